"""Export of any filtered candidate list as CSV or XLSX: every profile column and the
organisation's custom fields.

Spreadsheet programs execute cells that look like formulas, so every text cell that starts with
a tab or a carriage return, or whose first character after any spaces and control characters is
one of ``= + - @``, is prefixed with a single quote (formula-injection neutralisation, as OWASP
recommends; spreadsheet programs skip leading spaces, and the XLSX writer must drop control
characters, so the first character alone says too little). `neutralize` is the one place that
does it, and the writers here (`export_csv_lines`, `export_write_csv`, `export_write_xlsx`)
apply it to every cell they write, headers included: every spreadsheet the app produces (this
export, an import's failed rows) goes through them. Rows are read with
``iterator(chunk_size=2000)`` and written as they come (CSV streams; XLSX uses openpyxl's
write-only mode), so memory stays flat however many candidates are exported.
"""

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from candidates.models import Candidate, CustomField

CHUNK_SIZE = 2000
# A tab or carriage return first, or = + - @ after any whitespace and control characters.
FORMULA_START = re.compile(r"[\t\r]|[\s\x00-\x1f\x7f]*[=+\-@]")
FORMATS = {
    "csv": ("CSV (opens in any spreadsheet)", "text/csv; charset=utf-8"),
    "xlsx": (
        "Excel workbook (.xlsx)",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
}


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could read `text` as a formula (see FORMULA_START)."""
    return FORMULA_START.match(text) is not None


def neutralize(value):
    """A cell value that a spreadsheet will show, never execute. The importer drops the quote
    again (`importing.rows`), so a file the app wrote can be fixed and imported back."""
    if isinstance(value, str) and looks_like_formula(value):
        return "'" + value
    return value


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _day(value) -> str:
    return value.isoformat() if value else ""


def _join(values) -> str:
    return ", ".join(values or [])


COLUMNS: list[tuple[str, Callable[[Candidate], object]]] = [
    ("ID", lambda c: c.pk),
    ("First name", lambda c: c.first_name),
    ("Last name", lambda c: c.last_name),
    ("Email", lambda c: c.email),
    ("Alternate emails", lambda c: _join(c.alternate_emails)),
    ("Phone", lambda c: c.phone),
    ("City", lambda c: c.city),
    ("Country", lambda c: c.country),
    ("Headline", lambda c: c.headline),
    ("Current title", lambda c: c.current_title),
    ("Current company", lambda c: c.current_company),
    ("LinkedIn", lambda c: c.linkedin_url),
    ("GitHub", lambda c: c.github_url),
    ("Portfolio", lambda c: c.portfolio_url),
    ("Skills", lambda c: _join(c.skills)),
    ("Tags", lambda c: _join(c.tags)),
    ("Seniority", lambda c: c.get_seniority_display() if c.seniority else ""),
    ("Source", lambda c: c.get_source_display()),
    ("Source detail", lambda c: c.source_detail),
    ("Owner", lambda c: c.owner.email if c.owner else ""),
    ("Status", lambda c: c.get_status_display()),
    ("Not now until", lambda c: _day(c.not_now_until)),
    ("Added", lambda c: _when(c.created_at)),
    ("Updated", lambda c: _when(c.updated_at)),
    ("Last contacted", lambda c: _when(c.last_contacted_at)),
    ("Engagement score", lambda c: c.engagement_score if c.engagement_score is not None else ""),
    ("Has resume", lambda c: "yes" if c.has_resume else "no"),
]


def export_headers(custom_fields: list[CustomField]) -> list[str]:
    return [header for header, _ in COLUMNS] + [field.label for field in custom_fields]


def export_rows(
    queryset: QuerySet,
    custom_fields: list[CustomField],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[list]:
    """One list of cell values per candidate, in id order, read in chunks (the writers
    neutralise them)."""
    rows = (
        queryset.select_related("owner")
        .with_last_contacted()
        .order_by("id")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    count = 0
    for candidate in rows:
        values = [getter(candidate) for _, getter in COLUMNS]
        extra = candidate.custom_fields or {}
        for field in custom_fields:
            value = extra.get(field.key, "")
            values.append("" if value is None else value)
        yield values
        count += 1
        if on_progress and count % CHUNK_SIZE == 0:
            on_progress(count)
    if on_progress:
        on_progress(count)


def export_csv_lines(headers: list[str], rows: Iterable[list]) -> Iterator[str]:
    """CSV text, one line at a time (with a byte-order mark so Excel reads UTF-8); every cell,
    headers included, neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow([neutralize(header) for header in headers])
    for row in rows:
        writer.writerow([neutralize(value) for value in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_write_csv(fileobj, headers: list[str], rows: Iterable[list]) -> None:
    """Write CSV (every cell neutralised) to a text file object."""
    for chunk in export_csv_lines(headers, rows):
        fileobj.write(chunk)


def _xlsx_cell(value):
    """A value openpyxl can write: characters XML cannot hold are dropped *before* the value
    is neutralised, so what is checked is what is written (a control character then ``=…``
    must not become a formula)."""
    if isinstance(value, str):
        return neutralize(ILLEGAL_CHARACTERS_RE.sub("", value))[:32767]
    return value


def export_write_xlsx(fileobj, headers: list[str], rows: Iterable[list]) -> None:
    """Write an XLSX workbook (write-only mode: rows go to disk as they come; every cell,
    headers included, neutralised) to a binary file object or path."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Candidates")
    sheet.append([_xlsx_cell(h) for h in headers])
    for row in rows:
        sheet.append([_xlsx_cell(value) for value in row])
    workbook.save(fileobj)


def export_filename(fmt: str) -> str:
    return f"candidates-{timezone.localdate().isoformat()}.{fmt}"
