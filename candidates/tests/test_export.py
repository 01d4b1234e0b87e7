"""Export: CSV and XLSX of a filtered list, formula-injection neutralisation, export jobs."""

import csv
import io

import openpyxl
import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Job
from candidates.services.export import export_headers, neutralize
from candidates.tasks import bulk_action
from candidates.tests.factories import CandidateFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db

DANGEROUS = ["=1+1", "+44 7700 900123", "-2+3", "@SUM(A1)", "\tTab", "\rReturn"]


def _export(client, org, fmt, **params):
    return client.post(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "export", "export_format": fmt, **params},
    )


def _read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def _read_xlsx(content: bytes) -> list[list]:
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    return [list(row) for row in workbook.active.iter_rows(values_only=True)]


@pytest.mark.parametrize("value", DANGEROUS)
def test_neutralize_prefixes_each_dangerous_start(value):
    assert neutralize(value) == "'" + value


# A spreadsheet skips leading spaces, and the XLSX writer drops control characters (XML cannot
# hold them): what follows them decides.
HIDDEN_FORMULAS = [
    '\x01=HYPERLINK("https://evil.example","Click")',
    " =1+1",
    "\u00a0 +44 7700 900123",
    "\x1b\x02@SUM(A1)",
    "\n-2+3",
]


@pytest.mark.parametrize("value", HIDDEN_FORMULAS)
def test_neutralize_looks_past_leading_spaces_and_control_characters(value):
    assert neutralize(value) == "'" + value


@pytest.mark.parametrize("value", ["Ada", "", "a=b", 42, -5, None, " Ada", "\x01plain", "x -1"])
def test_neutralize_leaves_safe_values(value):
    assert neutralize(value) == value


@pytest.mark.parametrize("value", DANGEROUS)
def test_export_csv_neutralises_formulas(recruiter_client, org, value):
    candidate = CandidateFactory(organization=org, headline=value, first_name="Eve")
    response = _export(recruiter_client, org, "csv", ids=candidate.pk)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="candidates-')
    rows = _read_csv(b"".join(response.streaming_content))
    headline = rows[0].index("Headline")
    assert rows[1][headline] == "'" + value
    assert rows[1][rows[0].index("First name")] == "Eve"


@pytest.mark.parametrize("value", DANGEROUS)
def test_export_xlsx_neutralises_formulas(recruiter_client, org, value):
    candidate = CandidateFactory(organization=org, current_company=value)
    response = _export(recruiter_client, org, "xlsx", ids=candidate.pk)
    assert response.status_code == 200
    rows = _read_xlsx(b"".join(response.streaming_content))
    company = rows[0].index("Current company")
    assert rows[1][company] == "'" + value


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_neutralises_custom_field_labels_in_the_header_row(recruiter_client, org, fmt):
    CustomFieldFactory(organization=org, key="evil", label='=HYPERLINK("https://evil.example")')
    CandidateFactory(organization=org, custom_fields={"evil": "-1+1"})
    response = _export(recruiter_client, org, fmt, select_all="1", query="")
    content = b"".join(response.streaming_content)
    header, row = _read_csv(content) if fmt == "csv" else _read_xlsx(content)
    assert header[-1] == '\'=HYPERLINK("https://evil.example")'
    assert row[-1] == "'-1+1"


def test_export_has_every_profile_column_and_custom_fields(recruiter_client, org, recruiter_user):
    CustomFieldFactory(organization=org, key="visa", label="Visa status")
    CandidateFactory(
        organization=org,
        first_name="Ada",
        skills=["python", "sql"],
        owner=recruiter_user,
        custom_fields={"visa": "=cmd|' /C calc'!A0"},
    )
    response = _export(recruiter_client, org, "csv", select_all="1", query="")
    header, row = _read_csv(b"".join(response.streaming_content))
    record = dict(zip(header, row, strict=True))
    assert header[-1] == "Visa status"
    assert record["Skills"] == "python, sql"
    assert record["Owner"] == recruiter_user.email
    assert record["Visa status"] == "'=cmd|' /C calc'!A0"
    for column in ["Email", "Phone", "LinkedIn", "Status", "Source", "Last contacted", "Tags"]:
        assert column in header


def test_export_only_the_filtered_candidates(recruiter_client, org, other_org):
    CandidateFactory(organization=org, city="Berlin", first_name="Wanted")
    CandidateFactory(organization=org, city="Paris", first_name="Unwanted")
    CandidateFactory(organization=other_org, city="Berlin", first_name="Foreign")
    response = _export(recruiter_client, org, "xlsx", select_all="1", query="city=Berlin")
    rows = _read_xlsx(b"".join(response.streaming_content))
    assert [row[1] for row in rows[1:]] == ["Wanted"]


def test_export_xlsx_drops_control_characters_instead_of_failing(recruiter_client, org):
    candidate = CandidateFactory(organization=org, headline="Bell\x07 and\x1b nul")
    response = _export(recruiter_client, org, "xlsx", ids=candidate.pk)
    rows = _read_xlsx(b"".join(response.streaming_content))
    assert rows[1][rows[0].index("Headline")] == "Bell and nul"


def test_export_viewer_gets_403(viewer_client, org):
    candidate = CandidateFactory(organization=org)
    assert _export(viewer_client, org, "csv", ids=candidate.pk).status_code == 403


def test_export_job_page_and_download_are_403_for_a_viewer(
    recruiter_client, viewer_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CANDIDATE_EXPORT_INLINE_LIMIT = 1
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: None)
    CandidateFactory(organization=org, first_name="One")
    CandidateFactory(organization=org, first_name="Two")
    with django_capture_on_commit_callbacks(execute=True):
        _export(recruiter_client, org, "csv", select_all="1", query="")
    with scopes_disabled():
        job = Job.objects.get()
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    page = viewer_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    download = viewer_client.get(reverse("candidates:job_download", args=[org.slug, job.pk]))
    assert (page.status_code, download.status_code) == (403, 403)
    assert (
        recruiter_client.get(
            reverse("candidates:job_download", args=[org.slug, job.pk])
        ).status_code
        == 200
    )


def test_export_large_selection_runs_as_a_job_with_a_download(
    recruiter_client, org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CANDIDATE_EXPORT_INLINE_LIMIT = 1
    monkeypatch.setattr(bulk_action, "delay", lambda **kwargs: None)
    CandidateFactory(organization=org, first_name="One", headline="@risky")
    CandidateFactory(organization=org, first_name="Two")
    with django_capture_on_commit_callbacks(execute=True):
        response = _export(recruiter_client, org, "csv", select_all="1", query="")
    with scopes_disabled():
        job = Job.objects.get()
    assert job.kind == Job.Kind.EXPORT
    assert response["Location"] == reverse("candidates:job_detail", args=[org.slug, job.pk])
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.processed == 2
    assert job.result == {"rows": 2, "format": "CSV"}
    assert job.params["output_name"].startswith("candidates-")
    page = recruiter_client.get(response["Location"]).content.decode()
    assert reverse("candidates:job_download", args=[org.slug, job.pk]) in page
    assert "<strong>2</strong> candidates exported as CSV." in page
    assert "Download the export" in page
    # Nothing above the download still says it is being prepared (a flash once did).
    assert "being prepared" not in page
    download = recruiter_client.get(reverse("candidates:job_download", args=[org.slug, job.pk]))
    assert download.status_code == 200
    assert job.params["output_name"] in download["Content-Disposition"]
    rows = _read_csv(b"".join(download.streaming_content))
    assert [row[1] for row in rows[1:]] == ["One", "Two"]
    assert rows[1][rows[0].index("Headline")] == "'@risky"


def test_export_job_page_says_the_file_is_being_prepared_while_it_is(
    recruiter_client, org, recruiter_user
):
    with scopes_disabled():
        job = Job.objects.create(
            organization=org,
            kind=Job.Kind.EXPORT,
            status=Job.Status.QUEUED,
            created_by=recruiter_user,
            total=2,
            params={"format": "csv", "selection": {"query": ""}, "output_name": "c.csv"},
        )
    page_url = reverse("candidates:job_detail", args=[org.slug, job.pk])

    queued = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    done = recruiter_client.get(page_url, headers={"HX-Request": "true"}).content.decode()

    assert (
        "Your export is being prepared in the background; its download appears on this page "
        "when it is ready." in " ".join(queued.split())
    )
    assert "being prepared" not in done and "Download the export" in done


def test_export_job_xlsx(org, recruiter_user):
    CandidateFactory(organization=org, first_name="=HYPERLINK()")
    with scopes_disabled():
        job = Job.objects.create(
            organization=org,
            kind=Job.Kind.EXPORT,
            created_by=recruiter_user,
            params={"format": "xlsx", "selection": {"query": ""}, "output_name": "c.xlsx"},
        )
    bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
    with scopes_disabled():
        job.refresh_from_db()
        rows = _read_xlsx(job.output_file.read())
    assert rows[0] == export_headers([])
    assert rows[1][1] == "'=HYPERLINK()"


def _export_xlsx_cells(client, org, recruiter_user, how: str) -> list[list]:
    """The cells of an XLSX export of every candidate, made inline or by an export job."""
    if how == "inline":
        response = _export(client, org, "xlsx", select_all="1", query="")
        content = b"".join(response.streaming_content)
    else:
        with scopes_disabled():
            job = Job.objects.create(
                organization=org,
                kind=Job.Kind.EXPORT,
                created_by=recruiter_user,
                params={"format": "xlsx", "selection": {"query": ""}, "output_name": "c.xlsx"},
            )
        bulk_action.apply(kwargs={"organization_id": org.pk, "job_id": job.pk})
        with scopes_disabled():
            job.refresh_from_db()
            content = job.output_file.read()
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    return [list(row) for row in workbook.active.iter_rows()]


@pytest.mark.parametrize("how", ["inline", "job"])
def test_export_xlsx_never_writes_a_formula_hidden_behind_control_characters_or_spaces(
    recruiter_client, org, recruiter_user, how
):
    CustomFieldFactory(organization=org, key="evil", label='\x01=HYPERLINK("https://evil.example")')
    CandidateFactory(
        organization=org,
        headline='\x01=HYPERLINK("https://evil.example","Click")',
        current_company=" =1+1",
        tags=["\x1b@SUM(A1)"],
        custom_fields={"evil": "\x02 -2+3"},
    )

    header, row = _export_xlsx_cells(recruiter_client, org, recruiter_user, how)

    assert [cell.coordinate for cell in header + row if cell.data_type == "f"] == []
    record = dict(zip([cell.value for cell in header], [cell.value for cell in row], strict=True))
    assert header[-1].value == '\'=HYPERLINK("https://evil.example")'
    assert record["Headline"] == '\'=HYPERLINK("https://evil.example","Click")'
    assert record["Current company"] == "' =1+1"
    assert record["Tags"] == "'@SUM(A1)"
    assert row[-1].value == "' -2+3"
