"""Open an uploaded spreadsheet safely and stream its rows.

The format is decided by the content, never by the file name: an XLSX file is a zip archive
holding `[Content_Types].xml` and an `xl/` folder; anything else must decode as text (UTF-8
with or without a byte-order mark, UTF-16 with a byte-order mark, or else Windows-1252) and is
read as CSV with a sniffed delimiter and strict quoting (a broken row refuses the whole file:
see `_csv_rows`). Every problem is an `ImportFileError` whose message can be shown to the person
who uploaded the file as it is.

Row numbers are the ones a spreadsheet program shows: the header is the row it sits on, blank
rows count, and a quoted value spanning several lines is still one row.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from django.conf import settings

CSV = "csv"
XLSX = "xlsx"

SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 5
DELIMITERS = (",", ";", "\t")

# Magic numbers of files people upload by mistake, for a helpful message.
_KNOWN_BINARIES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel (.xls) or Word file — save it as .xlsx or CSV"),
    (b"\x1f\x8b", "a gzip archive"),
)


# What zipfile raises on a damaged or hostile archive: besides BadZipFile, NotImplementedError
# for a "version needed to extract" or compression method it does not know, EOFError for a
# truncated one, RuntimeError for an encrypted member, and OSError / ValueError for bad offsets.
ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError, OSError, ValueError)


class ImportFileError(Exception):
    """The file cannot be imported; the message says why, in words for the uploader."""


@dataclass
class FileInfo:
    """What `inspect_file` learnt about a file; stored in Job.params["file"]."""

    format: str
    headers: list[str]
    # Index (0-based, counting blank rows) of the header row among the file's rows.
    header_index: int = 0
    encoding: str = ""
    delimiter: str = ","
    # The first rows under the header, for the mapping screen.
    samples: list[list[str]] = field(default_factory=list)
    # Data rows (not blank) under the header; for XLSX an estimate from the sheet's dimension.
    rows: int = 0
    rows_exact: bool = True

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FileInfo:
        return cls(**data)


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_upload_bytes() -> int:
    return _setting("CANDIDATE_IMPORT_MAX_BYTES", 50 * 1024 * 1024)


def raw_stream(fileobj):
    """The underlying binary file object of a Django File / UploadedFile, rewound."""
    raw = fileobj
    while hasattr(raw, "file") and raw.file is not None and raw.file is not raw:
        raw = raw.file
    raw.seek(0)
    return raw


# --- detection ----------------------------------------------------------------------------------


def inspect_file(fileobj) -> FileInfo:
    """Decide how to read `fileobj` and check that it holds a header and at least one row."""
    raw = raw_stream(fileobj)
    head = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    if not head.strip():
        raise ImportFileError("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        info = _inspect_xlsx(raw)
    else:
        for magic, what in _KNOWN_BINARIES:
            if head.startswith(magic):
                raise ImportFileError(
                    f"This file is {what}, not a spreadsheet. Upload a CSV or Excel (.xlsx) file."
                )
        info = _inspect_csv(raw, head)
    if info.rows == 0:
        raise ImportFileError(
            "The file has a header row but no candidates under it. Add rows and upload it again."
        )
    return info


def check_xlsx_archive(raw) -> None:
    """Refuse archives that are not Excel workbooks, and zip bombs, before openpyxl opens them."""
    try:
        archive = zipfile.ZipFile(raw)
    except ZIP_ERRORS as error:
        raise ImportFileError("This file looks like a damaged zip or Excel file.") from error
    with archive:
        members = archive.infolist()
        names = {member.filename for member in members}
        if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
            raise ImportFileError(
                "This is a zip archive but not an Excel workbook. Upload a CSV or .xlsx file."
            )
        max_total = _setting("CANDIDATE_IMPORT_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024)
        max_ratio = _setting("CANDIDATE_IMPORT_MAX_COMPRESSION_RATIO", 200)
        total = sum(member.file_size for member in members)
        if total > max_total:
            raise ImportFileError(
                "This workbook unpacks to more than "
                f"{max_total // (1024 * 1024)} MB, which is too large to import."
            )
        for member in members:
            if member.file_size > 1024 * 1024 and (
                member.file_size > max_ratio * max(member.compress_size, 1)
            ):
                raise ImportFileError(
                    "This workbook is compressed suspiciously well (it may be a zip bomb) "
                    "and was not opened."
                )
    raw.seek(0)


def _open_workbook(raw):
    import openpyxl

    check_xlsx_archive(raw)
    try:
        # data_only: the values Excel saved for formula cells (formulas are never evaluated).
        return openpyxl.load_workbook(raw, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds of errors on damaged files
        raise ImportFileError("This Excel file could not be read. Is it damaged?") from error


def _inspect_xlsx(raw) -> FileInfo:
    workbook = _open_workbook(raw)
    try:
        sheet = workbook.worksheets[0]
        rows = _xlsx_rows(sheet)
        header_index, headers = _find_header(rows)
        samples = _samples(rows, len(headers))
        # A full count would read the whole sheet; the sheet's dimension is a good estimate and
        # the import reports the exact number.
        max_row = sheet.max_row if sheet.max_row else 0
        estimate = max(max_row - header_index - 1, len(samples))
        if not samples:
            estimate = 0
        return FileInfo(
            format=XLSX,
            headers=headers,
            header_index=header_index,
            samples=samples,
            rows=estimate,
            rows_exact=False,
        )
    except ImportFileError:
        raise
    except Exception as error:
        raise ImportFileError("This Excel file could not be read. Is it damaged?") from error
    finally:
        workbook.close()


def _detect_encoding(raw, head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise ImportFileError(
            "This file is not a text (CSV) or Excel file: it contains binary data."
        )
    # Valid UTF-8 all the way through, or else Windows-1252 (a superset of Latin-1's letters).
    decoder = codecs.getincrementaldecoder("utf-8")()
    raw.seek(0)
    try:
        while chunk := raw.read(1024 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "cp1252"
    raw.seek(0)
    return encoding


def _looks_binary(text: str, encoding: str) -> bool:
    """Whether decoded text is really binary data: control characters (other than tabs and line
    breaks) and, in an encoding that was guessed, bytes the encoding does not have (decoded as
    U+FFFD) are not in anything a spreadsheet program writes. One or two stray ones are
    tolerated. (A U+FFFD in valid UTF-8 is a real character, and kept.)"""
    odd = sum(1 for char in text if ord(char) < 32 and char not in "\t\r\n")
    if encoding not in ("utf-8", "utf-8-sig"):
        odd += text.count("\ufffd")
    return "\x00" in text or odd > max(2, len(text) // 100)


def _sniff_delimiter(sample: str) -> str:
    # Sniff on whole lines only: a cut-off last line confuses the sniffer.
    cut = sample.rfind("\n")
    sample = sample[:cut] if cut > 0 else sample
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
        if delimiter in DELIMITERS:
            return delimiter
    except csv.Error:
        pass
    # Fallback: the candidate delimiter that appears most often in the first line.
    first_line = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _inspect_csv(raw, head: bytes) -> FileInfo:
    encoding = _detect_encoding(raw, head)
    sample = head.decode(encoding, errors="replace")
    if _looks_binary(sample.lstrip("\ufeff"), encoding):
        raise ImportFileError(
            "This file is not a text (CSV) or Excel file: it contains binary data."
        )
    delimiter = _sniff_delimiter(sample.lstrip("\ufeff"))
    text = open_text(raw, encoding)
    try:
        # Reading every row to count them also finds a broken row anywhere in the file, so
        # such a file is refused at upload (see `_csv_rows`).
        rows = _csv_rows(text, delimiter)
        header_index, headers = _find_header(rows)
        samples = _samples(rows, len(headers))
        count = len(samples) + sum(1 for cells in rows if not _is_blank(cells))
    finally:
        text.detach()
    return FileInfo(
        format=CSV,
        headers=headers,
        header_index=header_index,
        encoding=encoding,
        delimiter=delimiter,
        samples=samples,
        rows=count,
    )


# --- reading ------------------------------------------------------------------------------------


def open_text(raw, encoding: str) -> io.TextIOWrapper:
    raw.seek(0)
    # newline="": the csv module handles line endings, including newlines inside quotes.
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def _csv_rows(text, delimiter: str) -> Iterator[list[str]]:
    """The rows of a CSV file, read strictly: a quote that is never closed, or text after a
    closing quote, stops the reading with an `ImportFileError` naming the line to fix (as a
    text editor numbers lines).

    Such an error is the whole file's, not one row's. A quote that is never closed turns every
    line after it into one value, so the "rows" after it are not rows at all: failing one row
    would hide that the rest of the file was lost, and a lenient reader imports the lot as one
    odd candidate. Text after a closing quote means the quoting is not what the file's other
    rows suggest, and columns may have shifted. `inspect_file` reads the whole file, so the
    upload is refused before anything is imported, with the line to fix."""
    reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    while True:
        start = reader.line_num + 1  # a row starts on the line after the previous row's last
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ImportFileError(_csv_error_message(error, start, reader.line_num)) from error
        yield cells


def _csv_error_message(error: csv.Error, start: int, line: int) -> str:
    """Why the row starting on line `start` could not be read; `line` is where reading stopped
    (for a quote never closed, the end of the file)."""
    reason = str(error)
    fix = "Fix the file (a text editor shows line numbers) and upload it again."
    if "unexpected end of data" in reason:
        return (
            f'The row starting on line {start} has a quote (") that is never closed, so the '
            "rest of the file would be read as one value. Close the quote, or write a quote "
            f'inside a value as two (""). {fix}'
        )
    if "expected after" in reason:
        return (
            f'Line {line} has text right after a closing quote ("). A value that starts with a '
            f'quote must end with one, and a quote inside a value is written as two (""). {fix}'
        )
    if "field larger than field limit" in reason:
        return (
            f"The row starting on line {start} has a value longer than "
            f'{csv.field_size_limit():,} characters: usually a quote (") that is never closed. '
            f"{fix}"
        )
    return f"The row starting on line {start} could not be read ({reason}). {fix}"


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _xlsx_rows(sheet) -> Iterator[list[str]]:
    for values in sheet.iter_rows(values_only=True):
        yield [_cell_text(value) for value in values]


def _is_blank(cells: list[str]) -> bool:
    for cell in cells:  # noqa: SIM110 (a loop that stops at the first cell is the fastest)
        if cell and not cell.isspace():
            return False
    return True


def _find_header(rows: Iterator[list[str]]) -> tuple[int, list[str]]:
    """The first non-blank row is the header (LinkedIn's "Notes:" preamble is skipped)."""
    index = -1
    in_preamble = False
    for cells in rows:
        index += 1
        if _is_blank(cells):
            in_preamble = False
            continue
        first = cells[0].strip().lower()
        if first == "notes:" or in_preamble:
            # LinkedIn's Connections.csv starts with a note, then a blank line, then the header.
            in_preamble = True
            continue
        return index, _check_header(cells)
    raise ImportFileError("The file has no header row: the first row must name the columns.")


def _check_header(cells: list[str]) -> list[str]:
    headers = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
    while headers and not headers[-1]:
        headers.pop()  # trailing empty columns (a trailing delimiter) are ignored
    seen: dict[str, int] = {}
    for position, name in enumerate(headers, start=1):
        if not name:
            raise ImportFileError(
                f"Column {position} has no name in the header row. Name every column."
            )
        key = name.casefold()
        if key in seen:
            raise ImportFileError(
                f"Two columns are named “{name}” (columns {seen[key]} and {position}). "
                "Column names must be unique."
            )
        seen[key] = position
    if not headers:
        raise ImportFileError("The file has no header row: the first row must name the columns.")
    return headers


def _samples(rows: Iterator[list[str]], width: int) -> list[list[str]]:
    samples = []
    for cells in rows:
        if _is_blank(cells):
            continue
        samples.append([(cells[i] if i < len(cells) else "")[:200] for i in range(width)])
        if len(samples) == SAMPLE_ROWS:
            break
    return samples


def iter_data_rows(fileobj, info: FileInfo) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) for every non-blank row under the header, streaming."""
    raw = raw_stream(fileobj)
    if info.format == XLSX:
        workbook = _open_workbook(raw)
        try:
            yield from _numbered(_xlsx_rows(workbook.worksheets[0]), info.header_index)
        finally:
            workbook.close()
    else:
        text = open_text(raw, info.encoding)
        try:
            yield from _numbered(_csv_rows(text, info.delimiter), info.header_index)
        finally:
            text.detach()


def _numbered(rows: Iterator[list[str]], header_index: int) -> Iterator[tuple[int, list[str]]]:
    for index, cells in enumerate(rows):
        if index <= header_index:
            continue
        if not cells or _is_blank(cells):
            continue
        yield index + 1, cells
