"""Importing candidates from CSV and XLSX files.

The flow: `import_create` stores the upload in a draft Job (never at a public URL) with what
`importing.reading.inspect_file` learnt about it; `import_configure` saves the column mapping
and options; `import_preview` shows the first rows as they would be imported; `import_start`
queues the Celery task, which calls `import_run`.

`import_run` streams the file and works in batches (`CANDIDATE_IMPORT_BATCH_SIZE`, 10,000 rows):
rows are parsed and validated in Python — in a reader thread, so that the next batch is
prepared while the database merges the current one — then, per batch and in ONE transaction,
the valid rows are `COPY`-ed into a temporary staging table and merged into the candidates
table in one statement that also writes the "imported" timeline entries; the invalid rows
become ImportRowErrors (COPY as well), and the job's counters and `params["committed_rows"]`
(the number of source rows fully committed) are updated. A crash therefore leaves exactly the
committed batches behind, and running the job again resumes after them.

Merging is the database's work (the search trigger, twenty indexes, the timeline, foreign-key
checks) and takes one CPU per connection, so batches are written on two connections at once
(`CANDIDATE_IMPORT_WRITERS`; one when the caller holds a transaction). Batch n+1 merges while
batch n is still being written, except its "late" rows — those sharing an email with batch n —
which wait until batch n has committed; and batch n+1 commits only after batch n. Committed
batches are therefore always the first ones of the file, and rows with one email still apply
in file order. A session advisory lock keeps a second run of the same job (a redelivered task)
from writing alongside the first.

Duplicates (email, case-insensitive, against live candidates) are resolved as if the rows were
imported one at a time, in file order:
* "update": a row whose email exists updates that candidate — non-empty cells replace values,
  tags, skills and alternate emails are added, custom fields are merged; several rows with one
  email in the file all apply in order (the first may create the candidate, later ones update
  it, and the last non-empty value wins);
* "skip": the first row with an email wins; later rows with that email, and rows whose email
  exists already, are counted as skipped.

The search vector of every inserted or updated candidate is filled by the database trigger.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import json
import queue
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from candidates.importing import reading
from candidates.importing.fields import CUSTOM_PREFIX, IGNORE, guess_mapping, target_label
from candidates.importing.rows import Options, RowConverter
from candidates.models import Candidate, ImportRowError, Job
from candidates.services.bulk import job_params_queued_at
from candidates.services.custom_fields import custom_fields_active
from candidates.services.export import export_write_csv
from candidates.services.profiles import organization_phone_region
from candidates.signals import candidates_changed_in_bulk
from crm.models import Membership, Organization, User
from crm.storage import stored_files_delete_on_commit

PREVIEW_ROWS = 20
# What a row whose email belongs to an existing candidate does to that candidate. FILL (the
# default): fill in its empty fields, add skills, tags and addresses; its name, title and
# other values stay. UPDATE: the row's non-empty cells replace its values. SKIP: nothing.
FILL = "fill"
UPDATE = "update"
SKIP = "skip"

# Staging columns, in COPY order, with their types.
STAGE_COLUMNS = (
    ("ord", "integer"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("email", "text"),
    ("alternate_emails", "varchar(254)[]"),
    ("phone", "text"),
    ("city", "text"),
    ("country", "text"),
    ("headline", "text"),
    ("current_title", "text"),
    ("current_company", "text"),
    ("linkedin_url", "text"),
    ("github_url", "text"),
    ("portfolio_url", "text"),
    ("skills", "varchar(64)[]"),
    ("tags", "varchar(64)[]"),
    ("seniority", "text"),
    ("status", "text"),
    ("not_now_until", "date"),
    ("source_detail", "text"),
    ("owner_id", "bigint"),
    ("custom_fields", "jsonb"),
)
_TEXT_KEYS = tuple(
    name for name, kind in STAGE_COLUMNS if kind == "text" and name not in {"email", "status"}
)
_ARRAY_KEYS = ("alternate_emails", "skills", "tags")


class ImportSuperseded(Exception):
    """Another run of the same job committed a batch first; this run stops quietly."""


def _batch_size() -> int:
    return getattr(settings, "CANDIDATE_IMPORT_BATCH_SIZE", 10_000)


def _gin_pending_list_limit() -> str:
    """In kB, as Postgres takes it (the default is 4096)."""
    return str(getattr(settings, "CANDIDATE_IMPORT_GIN_PENDING_LIST_KB", 32 * 1024))


def _gin_flush() -> None:
    """Merge the GIN pending lists of the candidates table into the indexes, so that searches
    (which scan the pending list) and later single writes do not pay for the import."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.indrelid = 'candidates_candidate'::regclass AND a.amname = 'gin'"
        )


# --- draft: upload, mapping, preview --------------------------------------------------------------


def import_create(*, organization: Organization, user: User, upload, info: reading.FileInfo) -> Job:
    """Store an inspected upload in a draft import Job, with the guessed column mapping."""
    custom_fields = custom_fields_active(organization=organization)
    job = Job(
        organization=organization,
        kind=Job.Kind.IMPORT,
        status=Job.Status.DRAFT,
        created_by=user,
        input_name=PurePath(upload.name or "import").name[:255],
        total=info.rows,
        params={
            "file": info.as_dict(),
            "mapping": guess_mapping(info.headers, custom_fields),
            "options": {
                "duplicates": FILL,
                "tags": [],
                "source": Candidate.Source.IMPORT.value,
                "phone_region": organization_phone_region(organization=organization) or "",
            },
        },
    )
    # An opaque name on disk: never the uploader's file name, never under a public URL.
    job.input_file.save(f"{uuid.uuid4().hex}.{info.format}", reading.raw_stream(upload), save=False)
    job.save()
    return job


def import_configure(*, job: Job, mapping: list[str], options: dict) -> Job:
    job.params = {**job.params, "mapping": mapping, "options": options, "configured": True}
    job.save(update_fields=["params"])
    return job


@dataclass
class PreviewCell:
    value: str
    error: str = ""


@dataclass
class ExistingCandidate:
    """The live candidate a previewed row's email belongs to: the row updates it (or is
    skipped), it does not create anyone."""

    pk: int
    name: str


@dataclass
class PreviewRow:
    row_number: int
    cells: list[PreviewCell]
    row_error: str = ""
    email: str = ""
    existing: ExistingCandidate | None = None

    @property
    def has_errors(self) -> bool:
        return bool(self.row_error) or any(cell.error for cell in self.cells)


@dataclass
class Preview:
    columns: list[tuple[str, str]]  # (key, label)
    duplicates: str = FILL  # what a row of an existing candidate does (FILL, UPDATE, SKIP)
    rows: list[PreviewRow] = field(default_factory=list)

    @property
    def rows_with_errors(self) -> int:
        return sum(1 for row in self.rows if row.has_errors)

    @property
    def rows_without_errors(self) -> int:
        return len(self.rows) - self.rows_with_errors

    @property
    def rows_of_existing_candidates(self) -> int:
        return sum(1 for row in self.rows if row.existing)

    @property
    def rows_to_import(self) -> int:
        """The previewed rows that will create or update a candidate."""
        skipped = self.rows_of_existing_candidates if self.duplicates == SKIP else 0
        return self.rows_without_errors - skipped


# Where a derived value is shown in the preview, and which error goes in which column.
_DERIVED_COLUMNS = {
    "full_name": ("first_name", "last_name"),
    "location": ("city", "country"),
    "links": ("linkedin_url", "github_url", "portfolio_url"),
    "owner_email": ("owner_id",),
}
_PREVIEW_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "city": "City",
    "country": "Country",
    "linkedin_url": "LinkedIn URL",
    "github_url": "GitHub URL",
    "portfolio_url": "Portfolio URL",
    "owner_id": "Owner",
}
_ERROR_COLUMN = {"full_name": "first_name", "owner_email": "owner_id", "links": "portfolio_url"}


def import_preview(*, job: Job, limit: int = PREVIEW_ROWS) -> Preview:
    """The first `limit` rows as they would be imported, with a reason for each invalid cell."""
    info = reading.FileInfo.from_dict(job.params["file"])
    converter = _converter(job)
    mapping = job.params["mapping"]
    custom_labels = {custom.key: custom.label for custom in converter.custom.values()}
    keys: list[str] = ["first_name"]  # the name always shows: a missing one is an error
    for target in mapping:
        for key in _DERIVED_COLUMNS.get(target, (target,)):
            if key != IGNORE and key not in keys:
                keys.append(key)
    if converter.options.tags and "tags" not in keys:
        keys.append("tags")
    if "status" in keys and "not_now_until" not in keys:
        keys.append("not_now_until")  # a "Not now" row shows the day it comes back
    columns = [(key, _PREVIEW_LABELS.get(key) or target_label(key, custom_labels)) for key in keys]
    owner_emails = {owner_id: email for email, owner_id in converter.owners.items()}
    preview = Preview(columns=columns, duplicates=converter.options.duplicates)
    with job.input_file.open("rb") as fileobj:
        rows = reading.iter_data_rows(fileobj, info)
        try:
            for row_number, cells in itertools.islice(rows, limit):
                values, errors = converter.convert(cells)
                errors = {_ERROR_COLUMN.get(key, key): message for key, message in errors.items()}
                preview_cells = []
                for key, _label in columns:
                    error = errors.get(key, "")
                    if error:
                        shown = _source_value(cells, mapping, key)
                    else:
                        shown = _display(key, values, owner_emails)
                    preview_cells.append(PreviewCell(value=shown, error=error))
                preview.rows.append(
                    PreviewRow(
                        row_number=row_number,
                        cells=preview_cells,
                        row_error=errors.get(""),
                        email="" if errors else values.get("email") or "",
                    )
                )
        finally:
            rows.close()
    _preview_existing(job=job, rows=preview.rows)
    return preview


def _preview_existing(*, job: Job, rows: list[PreviewRow]) -> None:
    """Name, on each previewed row, the existing candidate its email belongs to: one query for
    all the rows (the import itself finds them in its merge statement, not row by row)."""
    emails = {row.email for row in rows if row.email}
    if not emails:
        return
    found = {
        email: ExistingCandidate(pk=pk, name=f"{first} {last}".strip() or email)
        for pk, email, first, last in Candidate.objects.filter(
            organization_id=job.organization_id, merged_into__isnull=True, email__in=emails
        ).values_list("pk", "email", "first_name", "last_name")
    }
    for row in rows:
        row.existing = found.get(row.email)


def _display(key: str, values: dict, owner_emails: dict[int, str]) -> str:
    if key == "owner_id":
        return owner_emails.get(values.get("owner_id"), "")
    if key.startswith(CUSTOM_PREFIX):
        value = values["custom_fields"].get(key[len(CUSTOM_PREFIX) :], "")
        return str(value)
    value = values.get(key, "")
    if isinstance(value, list):
        return ", ".join(value)
    if key in {"status", "seniority"} and value:
        choices = Candidate.Status if key == "status" else Candidate.Seniority
        return str(choices(value).label)
    return str(value)


def _source_value(cells: list[str], mapping: list[str], key: str) -> str:
    """The original text of the cell behind a preview column, to show next to its error."""
    sources = {key} | {target for target, keys in _DERIVED_COLUMNS.items() if key in keys}
    for index, target in enumerate(mapping):
        if target in sources and index < len(cells):
            return cells[index]
    return ""


def import_start(*, job: Job) -> Job:
    """Queue a configured draft import (or a stopped one, which resumes); the worker runs
    `import_run`."""
    from candidates.tasks import import_run_task

    # Conditional: a draft discarded meanwhile (another tab) or a job another request has
    # already queued is left as it is, and nothing more is queued.
    queued = Job.objects.filter(pk=job.pk, status__in=[Job.Status.DRAFT, Job.Status.FAILED]).update(
        status=Job.Status.QUEUED, params=job_params_queued_at(timezone.now())
    )
    if not queued:
        return job
    job.status = Job.Status.QUEUED
    organization_id, job_id = job.organization_id, job.pk
    # Only a head start: with the broker down the error is logged, and beat's backstop
    # (bulk.jobs_requeue_waiting) queues the task again.
    transaction.on_commit(
        lambda: import_run_task.delay(organization_id=organization_id, job_id=job_id),
        robust=True,
    )
    return job


# Drafts (uploaded, never started) are kept this long, then deleted with their file.
IMPORT_DRAFT_KEEP_DAYS = 7


def import_discard(*, job: Job) -> bool:
    """Delete a draft import and, once that commits, its uploaded file. An import that has
    started is kept with its results: False (nothing changes)."""
    return bool(_drafts_delete(Job.objects.filter(pk=job.pk)))


def import_drafts_expire(*, now=None) -> int:
    """Delete, in every organisation, the draft imports uploaded more than
    IMPORT_DRAFT_KEEP_DAYS ago and never started, with their files: a spreadsheet of people's
    details is not kept for ever because someone stopped at the mapping screen."""
    cutoff = (now or timezone.now()) - timedelta(days=IMPORT_DRAFT_KEEP_DAYS)
    with scopes_disabled():
        return _drafts_delete(Job.objects.filter(kind=Job.Kind.IMPORT, created_at__lt=cutoff))


def _drafts_delete(jobs) -> int:
    """Delete the drafts among `jobs`, then their files once that commits. The rows are locked
    and their status read under the lock, so a Start at the same moment (a conditional UPDATE
    in `import_start`) either wins — the job is kept, with its file — or waits and then finds
    nothing to queue."""
    with transaction.atomic():
        drafts = list(
            jobs.select_for_update(of=("self",))
            .filter(status=Job.Status.DRAFT)
            .values_list("pk", "input_file")
        )
        if not drafts:
            return 0
        Job.objects.filter(pk__in=[pk for pk, _ in drafts]).delete()
        stored_files_delete_on_commit([name for _, name in drafts if name])
    return len(drafts)


# --- running ------------------------------------------------------------------------------------


def _converter(job: Job) -> RowConverter:
    params = job.params
    options = params.get("options", {})
    custom_fields = custom_fields_active(organization=job.organization_id)
    known = {CUSTOM_PREFIX + custom.key for custom in custom_fields}
    mapping = [
        target if not target.startswith(CUSTOM_PREFIX) or target in known else IGNORE
        for target in params["mapping"]
    ]
    owners = {
        email.lower(): user_id
        for email, user_id in Membership.objects.filter(
            organization_id=job.organization_id
        ).values_list("user__email", "user_id")
    }
    return RowConverter(
        headers=params["file"]["headers"],
        mapping=mapping,
        options=Options(
            duplicates=options.get("duplicates", UPDATE),  # drafts from before FILL
            tags=tuple(options.get("tags", ())),
            phone_region=options.get("phone_region", ""),
            # From the day the import was started where the organisation is (its pages and
            # tasks run in its time zone), not the UTC date.
            not_now_default=(
                timezone.localdate(job.created_at)
                + timedelta(days=int(options.get("not_now_days") or 90))
            ).isoformat(),
        ),
        owners=owners,
        custom_fields=custom_fields,
    )


@dataclass
class Batch:
    """One batch of source rows, parsed and validated, ready to be written."""

    start: int  # source data rows committed before this batch
    size: int  # source data rows in this batch
    stage_rows: list[tuple]
    failures: list[tuple[int, dict, str]]  # (row number, original values, reason)
    # Rows folded into an earlier row with the same email (update mode: they count as
    # updates of that candidate; skip mode: they are skipped).
    folded: int = 0
    # Rows whose email the previous batch also holds: merged only once that batch has
    # committed, so that rows with one email apply in file order even when two batches are
    # written at the same time (see `_write_batch`).
    late_rows: list[tuple] = field(default_factory=list)
    # The emails of this batch's staged rows, which make rows of the next batch late.
    emails: frozenset[str] = frozenset()


_quoted_items: dict[str, str] = {}


def _array_literal(items: list[str]) -> str:
    """A Postgres array literal: COPY takes it as text much faster than a Python list. Each
    element is quoted once per import (the same skills and tags recur on most rows)."""
    if not items:
        return "{}"
    quoted = _quoted_items
    parts = []
    for item in items:
        literal = quoted.get(item)
        if literal is None:
            literal = '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if len(quoted) < 65536:
                quoted[item] = literal
        parts.append(literal)
    return "{" + ",".join(parts) + "}"


def _stage_row(ord_: int, values: dict) -> tuple:
    get = values.get
    return (
        ord_,
        get("first_name", ""),
        get("last_name", ""),
        get("email", ""),
        _array_literal(values["alternate_emails"]),
        get("phone", ""),
        get("city", ""),
        get("country", ""),
        get("headline", ""),
        get("current_title", ""),
        get("current_company", ""),
        get("linkedin_url", ""),
        get("github_url", ""),
        get("portfolio_url", ""),
        _array_literal(values["skills"]),
        _array_literal(values["tags"]),
        get("seniority", ""),
        get("status", ""),
        get("not_now_until"),
        get("source_detail", ""),
        get("owner_id"),
        json.dumps(values["custom_fields"], ensure_ascii=False)
        if values["custom_fields"]
        else "{}",
    )


def _fold(earlier: dict, later: dict, *, fill: bool = False) -> None:
    """Apply a later row with the same email onto an earlier one, as the merge applies a row to
    an existing candidate: UPDATE (the later row's non-empty values win) or `fill` (they only
    fill the earlier row's empty values; a status still follows the later row). So a file
    means the same whether its rows with one email fall in one batch or in several."""
    for key, value in later.items():
        if key in _ARRAY_KEYS:
            earlier[key] = list(dict.fromkeys([*earlier[key], *value]))
        elif key == "custom_fields":
            earlier[key] = {**value, **earlier[key]} if fill else {**earlier[key], **value}
        elif value not in ("", None) and (
            not fill or key == "status" or earlier.get(key) in ("", None)
        ):
            earlier[key] = value
    if later.get("status"):  # a later status comes with its own "not now" date (or none)
        earlier["not_now_until"] = later.get("not_now_until")
    if earlier.get("email") in earlier["alternate_emails"]:
        earlier["alternate_emails"].remove(earlier["email"])


def _reason(errors: dict[str, str], labels: dict[str, str]) -> str:
    """'Email: “x” is not a valid email address. Phone: …' (name and row messages stand alone)."""
    return " ".join(
        f"{labels.get(key) or target_label(key, {})}: {message}"
        if key not in ("", "first_name") and not key.startswith(CUSTOM_PREFIX)
        else message
        for key, message in errors.items()
    )


def _prepare(
    rows: list[tuple[int, list[str]]],
    *,
    start: int,
    converter: RowConverter,
    headers: list[str],
    labels: dict[str, str],
    previous_emails: frozenset[str] = frozenset(),
) -> Batch:
    update = converter.options.duplicates != SKIP
    fill = converter.options.duplicates == FILL
    kept: dict[str, dict] = {}  # email -> values of the row that stays
    valid: list[dict] = []
    failures = []
    folded = 0
    width = len(headers)
    for row_number, cells in rows:
        values, errors = converter.convert(cells)
        if errors:
            original = dict(zip(headers, cells[:width] + [""] * (width - len(cells)), strict=True))
            failures.append((row_number, original, _reason(errors, labels)))
            continue
        email = values.get("email")
        if email:
            if email in kept:
                folded += 1
                if update:
                    _fold(kept[email], values, fill=fill)
                continue
            kept[email] = values
        valid.append(values)
    stage_rows, late_rows = [], []
    for ord_, values in enumerate(valid):
        late = previous_emails and values.get("email") in previous_emails
        (late_rows if late else stage_rows).append(_stage_row(ord_, values))
    return Batch(
        start=start,
        size=len(rows),
        stage_rows=stage_rows,
        failures=failures,
        folded=folded,
        late_rows=late_rows,
        emails=frozenset(kept),
    )


def _batches(
    records: Iterator[tuple[int, list[str]]], *, start: int, size: int, **prepare_kwargs
) -> Iterator[Batch]:
    # The batch before the first one of a run has committed (a resumed run starts after it).
    previous_emails: frozenset[str] = frozenset()
    while True:
        rows = list(itertools.islice(records, size))
        if not rows:
            return
        batch = _prepare(rows, start=start, previous_emails=previous_emails, **prepare_kwargs)
        previous_emails = batch.emails
        yield batch
        start += len(rows)


def _in_thread(items: Iterator, depth: int = 2) -> Iterator:
    """Produce `items` in a thread, `depth` ahead: parsing overlaps the database's work."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        channel.put((item, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            channel.put((done, None))
        except BaseException as error:  # handed to the consumer, raised there
            channel.put((done, error))

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = channel.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                channel.get(timeout=0.1)
        thread.join()


_CREATE_STAGE = "CREATE TEMPORARY TABLE import_stage ({}) ON COMMIT DROP".format(
    ", ".join(f"{name} {kind}" for name, kind in STAGE_COLUMNS)
)
_COPY_STAGE = "COPY import_stage ({}) FROM STDIN".format(", ".join(n for n, _ in STAGE_COLUMNS))

_INSERT_COLUMNS = (
    "organization_id, first_name, last_name, email, alternate_emails, phone, city, country, "
    "headline, current_title, current_company, linkedin_url, github_url, portfolio_url, "
    "skills, tags, seniority, source, source_detail, owner_id, status, not_now_until, "
    "custom_fields, created_at, updated_at, has_resume, resume_text, search_name"
)
_INSERT_SELECT = """
    SELECT %(organization)s, s.first_name, s.last_name, s.email, s.alternate_emails, s.phone,
        s.city, s.country, s.headline, s.current_title, s.current_company, s.linkedin_url,
        s.github_url, s.portfolio_url, s.skills, s.tags, s.seniority, %(source)s, s.source_detail,
        s.owner_id, COALESCE(NULLIF(s.status, ''), 'active'), s.not_now_until, s.custom_fields,
        %(now)s, %(now)s, false, '', ''
    FROM import_stage s
"""


def _array_union(column: str) -> str:
    """The candidate's values followed by the imported ones it does not have yet, in order."""
    return (
        f"CASE WHEN cardinality(EXCLUDED.{column}) = 0 THEN c.{column} ELSE c.{column} || ARRAY("  # noqa: S608
        f"SELECT u.x FROM unnest(EXCLUDED.{column}) WITH ORDINALITY AS u(x, n) "
        f"WHERE u.x <> ALL(c.{column}) ORDER BY u.n) END"
    )


# How an existing candidate takes an imported row (UPDATE): non-empty cells win, lists are
# added to, custom fields are merged, the source stays. The status column cannot carry "no
# value" in the proposed row (it is NOT NULL, checked before the conflict), so it is read from
# the staging table, and only when the file has a status column. FILL keeps every value the
# candidate has and takes the row's only where the candidate's is empty; lists are added to
# all the same, and a mapped status column still sets the status (a status is never empty:
# mapping the column is the choice to set it, and a "Do not contact" in the file is kept).
_COMMON_SET = [
    "status = CASE WHEN %(status_mapped)s THEN COALESCE((SELECT NULLIF(s.status, '') "
    "FROM import_stage s WHERE s.email = EXCLUDED.email), c.status) ELSE c.status END",
    # A new status brings its "not now" date (none for other statuses); no status, no change.
    "not_now_until = CASE WHEN %(status_mapped)s AND EXISTS (SELECT 1 FROM import_stage s "
    "WHERE s.email = EXCLUDED.email AND s.status <> '') THEN EXCLUDED.not_now_until "
    "ELSE c.not_now_until END",
    "skills = " + _array_union("skills"),
    "tags = " + _array_union("tags"),
    # an alternate email equal to the main one is pointless
    "alternate_emails = ARRAY(SELECT a FROM unnest("  # noqa: S608
    + _array_union("alternate_emails")
    + ") AS a WHERE a <> c.email)",
    "updated_at = %(now)s",
]
_FILL_SET = ",\n        ".join(
    [f"{name} = COALESCE(NULLIF(c.{name}, ''), EXCLUDED.{name})" for name in _TEXT_KEYS]
    + _COMMON_SET
    + [
        "owner_id = COALESCE(c.owner_id, EXCLUDED.owner_id)",
        "custom_fields = EXCLUDED.custom_fields || c.custom_fields",
    ]
)
_UPDATE_SET = ",\n        ".join(
    [f"{name} = COALESCE(NULLIF(EXCLUDED.{name}, ''), c.{name})" for name in _TEXT_KEYS]
    + _COMMON_SET
    + [
        "owner_id = COALESCE(EXCLUDED.owner_id, c.owner_id)",
        "custom_fields = c.custom_fields || EXCLUDED.custom_fields",
    ]
)

# Activity rows are written set-based from the ids the merge returns: at a million rows the
# per-row `activities_record_bulk` would cost more than the import itself.
_ACTIVITY_INSERT = """
    INSERT INTO candidates_activity
        (organization_id, candidate_id, kind, actor_id, occurred_at, summary, data, note_id)
    SELECT %(organization)s, id, 'imported', %(actor)s, %(now)s,
        CASE WHEN created THEN %(created_summary)s ELSE %(updated_summary)s END,
        jsonb_build_object('job_id', %(job)s::int, 'created', created), NULL
    FROM merged
"""

# The unique index candidate_email_unique_per_org finds the duplicates; `xmax = 0` tells an
# inserted row from an updated one.
_MERGE = f"""
WITH merged AS (
    INSERT INTO candidates_candidate AS c ({_INSERT_COLUMNS})
    {_INSERT_SELECT}
    ORDER BY s.ord
    ON CONFLICT (organization_id, email) WHERE NOT (email = '') AND merged_into_id IS NULL
    {{on_conflict}}
    RETURNING c.id, (c.xmax = 0) AS created
), activities AS ({_ACTIVITY_INSERT})
SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM merged
"""  # noqa: S608 (built from the constants above, no user input)
MERGE_UPDATE = _MERGE.replace("{on_conflict}", f"DO UPDATE SET {_UPDATE_SET}")
MERGE_FILL = _MERGE.replace("{on_conflict}", f"DO UPDATE SET {_FILL_SET}")
MERGE_SKIP = _MERGE.replace("{on_conflict}", "DO NOTHING")


def _stage_and_merge(cursor, rows: list[tuple], *, sql: str, params: dict, index: bool):
    """COPY rows into the staging table and merge them: (created, updated)."""
    # ON COMMIT DROP cleans up; the DROP covers a second staging in one batch (its late rows)
    # and an enclosing transaction (tests).
    cursor.execute("DROP TABLE IF EXISTS pg_temp.import_stage")
    cursor.execute(_CREATE_STAGE)
    with cursor.cursor.copy(_COPY_STAGE) as copy:
        for row in rows:
            copy.write_row(row)
    if index:
        cursor.execute("CREATE INDEX ON import_stage (email)")
    cursor.execute(sql, params)
    return cursor.fetchone()


def _write_batch(
    *, job: Job, batch: Batch, counts: dict[str, int], now, after: Callable | None = None
) -> None:
    """Write one batch in one transaction, together with the job's counters.

    `after`, when given, returns once the previous batch has committed (and raises if it
    will not): several batches are written at the same time (`_write_concurrently`), but a
    batch merges its late rows — those with an email of the previous batch — and commits
    only after its predecessor, so rows with one email apply in file order and the committed
    batches are always the first ones of the file."""
    duplicates = job.params.get("options", {}).get("duplicates", UPDATE)
    update = duplicates != SKIP
    status_mapped = bool({"status", "not_now_until"} & set(job.params["mapping"]))
    params = {
        "organization": job.organization_id,
        "source": job.params.get("options", {}).get("source") or Candidate.Source.IMPORT,
        "now": now,
        "actor": job.created_by_id,
        "job": job.pk,
        "created_summary": f"Imported from {job.input_name}"[:500],
        "updated_summary": f"Updated by an import from {job.input_name}"[:500],
        "status_mapped": status_mapped,
    }
    sql = {FILL: MERGE_FILL, SKIP: MERGE_SKIP}.get(duplicates, MERGE_UPDATE)
    merge = {"sql": sql, "params": params, "index": update and status_mapped}
    with transaction.atomic(), connection.cursor() as cursor:
        # Let the GIN indexes (search vector, trigrams, tags) collect the batch in their
        # pending lists and merge it in bulk, which is much cheaper than entry by entry;
        # `_gin_flush` empties the lists when the import ends.
        cursor.execute(
            "SELECT set_config('gin_pending_list_limit', %s, true)", [_gin_pending_list_limit()]
        )
        created = updated = 0
        if batch.stage_rows:
            created, updated = _stage_and_merge(cursor, batch.stage_rows, **merge)
        if batch.failures:
            with cursor.cursor.copy(
                "COPY candidates_importrowerror (organization_id, job_id, row_number, data, reason) "
                "FROM STDIN"
            ) as copy:
                for row_number, original, reason in batch.failures:
                    copy.write_row(
                        (
                            job.organization_id,
                            job.pk,
                            row_number,
                            json.dumps(original, ensure_ascii=False),
                            reason,
                        )
                    )
        if after is not None:
            after()
        if batch.late_rows:
            late_created, late_updated = _stage_and_merge(cursor, batch.late_rows, **merge)
            created, updated = created + late_created, updated + late_updated
        # Checked last, under the job's row lock: the previous batch of this run has committed,
        # so a different count means another run of the job committed this batch already.
        cursor.execute(
            "SELECT COALESCE((params->>'committed_rows')::int, 0) FROM candidates_job "
            "WHERE id = %s FOR UPDATE",
            [job.pk],
        )
        if cursor.fetchone()[0] != batch.start:
            raise ImportSuperseded
        staged = len(batch.stage_rows) + len(batch.late_rows)
        counts["created"] += created
        if update:
            counts["updated"] += updated + batch.folded
            counts["skipped"] += staged - created - updated
        else:
            counts["skipped"] += batch.folded + staged - created
        counts["failed"] += len(batch.failures)
        committed = batch.start + batch.size
        job.params = {**job.params, "committed_rows": committed}
        job.processed = committed
        job.result = dict(counts)
        Job.objects.filter(pk=job.pk).update(
            processed=job.processed, result=job.result, params=job.params
        )


class _PreviousBatchFailed(Exception):
    """The batch before this one did not commit, so this one must not either."""


class _InOrder:
    """Batches written at the same time commit in file order (see `_write_batch`)."""

    def __init__(self):
        self._condition = threading.Condition()
        self._committed = -1  # index (in this run) of the last committed batch
        self.error: BaseException | None = None  # the first failure, which stops the run

    def wait_committed(self, index: int) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._committed >= index or self.error is not None)
            if self._committed < index:
                raise _PreviousBatchFailed

    def committed(self, index: int) -> None:
        with self._condition:
            self._committed = index
            self._condition.notify_all()

    def failed(self, error: BaseException) -> None:
        with self._condition:
            if self.error is None:
                self.error = error
            self._condition.notify_all()


def _writer_count() -> int:
    return max(1, int(getattr(settings, "CANDIDATE_IMPORT_WRITERS", 2)))


def _write_concurrently(*, job: Job, batches: Iterator[Batch], counts: dict, writers: int) -> None:
    """Write the batches on `writers` database connections, batch n on connection n % writers.

    The database does most of an import's work (the search trigger, twenty indexes, the
    timeline, foreign-key checks) on one CPU per connection; with two connections it uses a
    second CPU while the first is busy. Commits stay in file order (`_InOrder`)."""
    order = _InOrder()
    organization = job.organization
    inboxes: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in range(writers)]

    def write(inbox: queue.Queue) -> None:
        try:
            with scope(organization=organization):
                while (item := inbox.get()) is not None:
                    index, batch = item
                    if order.error is not None:
                        continue  # the run is stopping: drain
                    try:
                        _write_batch(
                            job=job,
                            batch=batch,
                            counts=counts,
                            now=timezone.now(),
                            after=functools.partial(order.wait_committed, index - 1),
                        )
                    except BaseException as error:  # raised by the run's thread
                        order.failed(error)
                    else:
                        order.committed(index)
        finally:
            connection.close()  # this thread's own connection

    threads = [
        threading.Thread(target=write, args=(inbox,), name=f"import-writer-{n}", daemon=True)
        for n, inbox in enumerate(inboxes)
    ]
    for thread in threads:
        thread.start()
    try:
        for index, batch in enumerate(batches):
            inbox = inboxes[index % writers]
            while order.error is None:
                try:
                    inbox.put((index, batch), timeout=0.2)
                    break
                except queue.Full:
                    continue
            if order.error is not None:
                break
    finally:
        # Batches already handed over are finished (committed in order, or rolled back).
        for inbox in inboxes:
            inbox.put(None)
        for thread in threads:
            thread.join()
    if order.error is not None:
        raise order.error


# The first key of the session lock that keeps two runs of one import apart.
_RUN_LOCK_NAMESPACE = 0x1A40


def import_run_lock_key(job_id: int) -> list[int]:
    return [_RUN_LOCK_NAMESPACE, job_id & 0x7FFFFFFF]


@contextlib.contextmanager
def _run_lock(job: Job) -> Iterator[bool]:
    """Whether this is the only run of the job (a redelivered task, or one queued again by
    beat's backstop, can start a second one while the first is still writing); held on this
    thread's connection until the run ends, and released by the database if the worker dies."""
    key = import_run_lock_key(job.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def import_run(*, job: Job) -> Job:
    """Run (or resume) an import job to the end. Safe to call again after a crash; a run
    started while another run of the job is active leaves the job to it."""
    with scope(organization=job.organization), _run_lock(job) as alone:
        job.refresh_from_db()
        if job.status == Job.Status.DONE or not alone:
            return job
        info = reading.FileInfo.from_dict(job.params["file"])
        converter = _converter(job)
        start = int(job.params.get("committed_rows", 0))
        counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
        counts.update({key: int(job.result.get(key, 0)) for key in counts} if start else {})
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RUNNING,
            started_at=job.started_at or timezone.now(),
            finished_at=None,
            error="",
        )
        job.refresh_from_db()
        labels = {CUSTOM_PREFIX + custom.key: custom.label for custom in converter.custom.values()}
        try:
            with job.input_file.open("rb") as fileobj:
                records = reading.iter_data_rows(fileobj, info)
                skipped_source = itertools.islice(records, start, None)
                batches = _batches(
                    skipped_source,
                    start=start,
                    size=_batch_size(),
                    converter=converter,
                    headers=info.headers,
                    labels=labels,
                )
                writers = _writer_count()
                with contextlib.closing(_in_thread(batches)) as prepared:
                    if writers > 1 and not connection.in_atomic_block:
                        _write_concurrently(
                            job=job, batches=prepared, counts=counts, writers=writers
                        )
                    else:  # one connection: in a caller's transaction its writes must stay in it
                        for batch in prepared:
                            _write_batch(job=job, batch=batch, counts=counts, now=timezone.now())
        except ImportSuperseded:
            return job
        except reading.ImportFileError as error:
            _stop(job, f"{error} The rows before it were imported.")
            return job
        except Exception:
            _stop(
                job,
                "The import stopped unexpectedly. The rows counted above were imported; "
                "running the import again continues after them.",
            )
            raise
        _gin_flush()
        _finish(job, headers=info.headers)
        if job.result.get("created") or job.result.get("updated"):
            candidates_changed_in_bulk.send(
                sender=Candidate, organization=job.organization, job=job
            )
        if job.result.get("created") or job.result.get("updated"):
            # New profiles, and updated ones (an import can give a profile another's phone).
            _duplicates_scan_queue(organization_id=job.organization_id)
        return job


def _duplicates_scan_queue(*, organization_id: int) -> None:
    """New and updated profiles are checked for duplicates by the organisation-wide scan,
    queued once the import has landed: it is set-based and skips switchboard phones and
    placeholder emails, where checking a large batch row against the organisation could pair
    thousands."""
    from candidates.tasks import duplicates_scan

    transaction.on_commit(lambda: duplicates_scan.delay(organization_id=organization_id))


def _stop(job: Job, message: str) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED, error=message, finished_at=timezone.now()
    )
    job.refresh_from_db()


def import_failed_rows_csv(*, job: Job, stream) -> int:
    """Write the failed rows (row number, original values, reason) as CSV to a binary stream.
    The export's CSV writer neutralises every cell, the uploaded file's header row included
    (a header like ``=HYPERLINK(…)`` would otherwise run in the recruiter's spreadsheet)."""
    headers = job.params["file"]["headers"]
    errors = (
        ImportRowError.objects.filter(organization_id=job.organization_id, job=job)
        .order_by("row_number")
        .values_list("row_number", "data", "reason")
    )
    count = 0

    def rows():
        nonlocal count
        for row_number, data, reason in errors.iterator(chunk_size=5000):
            count += 1
            yield [row_number, *(data.get(header, "") for header in headers), reason]

    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")  # the writer adds the BOM
    export_write_csv(text, ["Row", *headers, "Reason"], rows())
    text.flush()
    text.detach()
    return count


def _finish(job: Job, *, headers: list[str]) -> None:
    now = timezone.now()
    job.refresh_from_db()
    if job.result.get("failed"):
        with tempfile.TemporaryFile() as stream:
            import_failed_rows_csv(job=job, stream=stream)
            stream.seek(0)
            job.output_file.save(f"{uuid.uuid4().hex}.csv", File(stream), save=False)
        stem = PurePath(job.input_name).stem or "import"
        job.params = {**job.params, "output_name": f"{stem}-failed-rows.csv"}
    job.status = Job.Status.DONE
    job.finished_at = now
    job.total = job.processed
    job.save(update_fields=["output_file", "params", "status", "finished_at", "total"])
