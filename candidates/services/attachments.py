"""Resumes and other files on a candidate's profile.

Files are checked by their content, never by their name: a PDF starts with ``%PDF-``; a DOCX is
a zip archive with ``[Content_Types].xml`` and ``word/document.xml`` whose declared sizes are
checked *before* anything is decompressed (zip bombs). They are stored through Django's storage
API under an opaque path and only ever served by a view that checks membership.

Text is extracted later by the ``candidates.attachment_extract_text`` task, in a child process
limited in memory and processor time (``extraction.py``: decompression bombs); the candidate's
``resume_text`` (which feeds the search vector through the database trigger) is the
concatenation of the text of their resumes.
"""

import logging
import re
import time
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from candidates.importing.reading import ZIP_ERRORS
from candidates.models import Activity, Attachment, Candidate
from candidates.services.activities import activity_record
from candidates.services.extraction import DOCX_READER, PDF_READER, text_extract_in_child
from crm.models import User
from crm.storage import stored_files_delete_on_commit
from crm.templatetags.crm_tags import file_size

logger = logging.getLogger(__name__)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ALLOWED_TYPES = {PDF: "PDF", DOCX: "Word (.docx)"}

# Limits; each can be overridden in settings.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DOCX_MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
DOCX_MAX_COMPRESSION_RATIO = 100
DOCX_MAX_MEMBERS = 1000
EXTRACT_MAX_PAGES = 50
EXTRACT_MAX_SECONDS = 60
EXTRACT_MAX_MEMORY_BYTES = 512 * 1024 * 1024  # the address space of the process that reads a file
EXTRACTED_TEXT_MAX_CHARS = 200_000
RESUME_TEXT_MAX_CHARS = 100_000


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, f"ATTACHMENT_{name}", default))


@dataclass(frozen=True)
class InspectedFile:
    content_type: str
    size: int


def attachment_inspect(*, uploaded_file: UploadedFile) -> InspectedFile:
    """Check an upload's size and real type; raise ValidationError with a message for people."""
    max_bytes = _limit("MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES)
    if uploaded_file.size is None or uploaded_file.size == 0:
        raise ValidationError("The file is empty.", code="empty")
    if uploaded_file.size > max_bytes:
        raise ValidationError(
            "The file is %(size)s; the limit is %(limit)s.",
            code="too_large",
            params={
                "size": file_size(uploaded_file.size),
                "limit": file_size(max_bytes),
            },
        )
    uploaded_file.seek(0)
    head = uploaded_file.read(8)
    uploaded_file.seek(0)
    if head.startswith(b"%PDF-"):
        return InspectedFile(content_type=PDF, size=uploaded_file.size)
    if head.startswith(b"PK\x03\x04"):
        _check_docx(uploaded_file)
        uploaded_file.seek(0)
        return InspectedFile(content_type=DOCX, size=uploaded_file.size)
    raise ValidationError(
        "This file is not a PDF or a Word (.docx) document. Upload a PDF or a DOCX file.",
        code="wrong_type",
    )


def _check_docx(uploaded_file: UploadedFile) -> None:
    """A Word document, and not a zip bomb: judged from the central directory only, before any
    member is decompressed. (zipfile never inflates a member past its declared size, so the
    declared sizes are a true bound.)"""
    not_docx = ValidationError("This file is not a valid Word (.docx) document.", code="wrong_type")
    try:
        archive = zipfile.ZipFile(uploaded_file)
    except ZIP_ERRORS:  # NotImplementedError for an unknown zip version, among others
        raise not_docx from None
    with archive:
        members = archive.infolist()
        if len(members) > _limit("DOCX_MAX_MEMBERS", DOCX_MAX_MEMBERS):
            raise ValidationError("This document has too many parts to be safe to open.", "bomb")
        uncompressed = sum(member.file_size for member in members)
        compressed = sum(member.compress_size for member in members)
        if uncompressed > _limit("DOCX_MAX_UNCOMPRESSED_BYTES", DOCX_MAX_UNCOMPRESSED_BYTES):
            raise ValidationError("This document expands to too much data to be safe.", "bomb")
        ratio = _limit("DOCX_MAX_COMPRESSION_RATIO", DOCX_MAX_COMPRESSION_RATIO)
        if uncompressed > ratio * max(compressed, 1) and uncompressed > 1024 * 1024:
            raise ValidationError("This document is compressed suspiciously well.", "bomb")
        names = {member.filename for member in members}
        if not {"[Content_Types].xml", "word/document.xml"} <= names:
            raise not_docx


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
# Bidirectional controls make "cv\u202efdp.bat" show as "cvtab.pdf"; they are dropped.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
EXTENSIONS = {PDF: ".pdf", DOCX: ".docx"}


def attachment_clean_name(name: str, *, content_type: str | None = None) -> str:
    """The file's name as shown and offered for download: no paths, no control or
    bidirectional characters and, given the detected `content_type`, an extension that says
    what the file is. A name that does not already end in it gets it appended ("cv.bat" →
    "cv.bat.pdf"): replacing whatever follows the last dot would mangle names such as
    "Resume v2.1", and the kept ".bat" shows the recruiter what the uploader called it."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _BIDI_CONTROLS.sub("", name)
    name = _UNSAFE_NAME.sub(" ", name).strip().strip(".").strip() or "file"
    extension = EXTENSIONS.get(content_type, "")
    if extension and not name.lower().endswith(extension):
        name += extension
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 200 - len(extension) - 1] + dot + extension) if dot else name[:200]
    return name


def attachment_create(
    *,
    candidate: Candidate,
    uploaded_file: UploadedFile,
    kind: str = Attachment.Kind.RESUME,
    actor: User | None = None,
) -> Attachment:
    """Store a checked upload on the candidate, put it on the timeline and queue text
    extraction once the transaction commits."""
    inspected = attachment_inspect(uploaded_file=uploaded_file)
    with transaction.atomic():
        attachment = Attachment(
            organization_id=candidate.organization_id,
            candidate=candidate,
            original_name=attachment_clean_name(
                uploaded_file.name, content_type=inspected.content_type
            ),
            content_type=inspected.content_type,
            size=inspected.size,
            kind=kind,
            uploaded_by=actor,
        )
        # The storage API with the model's upload_to: an opaque path, never the user's name.
        attachment.file.save("upload", uploaded_file, save=False)
        attachment.save()
        if kind == Attachment.Kind.RESUME and not candidate.has_resume:
            Candidate.objects.filter(pk=candidate.pk).update(has_resume=True)
            candidate.has_resume = True
        activity_record(
            candidate=candidate,
            kind=Activity.Kind.ATTACHMENT_ADDED,
            summary=f"{attachment.get_kind_display()} attached: {attachment.original_name}",
            actor=actor,
            data={"attachment_id": attachment.pk, "name": attachment.original_name},
        )
        transaction.on_commit(lambda: _queue_extraction(attachment))
    return attachment


def _queue_extraction(attachment: Attachment) -> None:
    from candidates.tasks import attachment_extract_text

    attachment_extract_text.delay(
        organization_id=attachment.organization_id, attachment_id=attachment.pk
    )


def attachment_delete(*, attachment: Attachment, actor: User | None = None) -> None:
    """Delete the row (the timeline says who removed which file), then the stored file once
    the deletion has committed."""
    candidate_id = attachment.candidate_id
    name = attachment.file.name
    with transaction.atomic():
        activity_record(
            candidate=attachment.candidate,
            kind=Activity.Kind.EDITED,
            summary=f"{attachment.get_kind_display()} deleted: {attachment.original_name}",
            actor=actor,
            data={"fields": ["files"], "name": attachment.original_name},
        )
        attachment.delete()
        candidate_refresh_resume_text(candidate_id=candidate_id)
        stored_files_delete_on_commit([name])


def _extract_pdf(data: bytes, *, max_pages: int, deadline: float) -> str:
    return _extract_in_child(PDF_READER, data, max_pages=max_pages, deadline=deadline)


def _extract_docx(data: bytes, *, deadline: float) -> str:
    return _extract_in_child(DOCX_READER, data, max_pages=0, deadline=deadline)


def _extract_in_child(reader: str, data: bytes, *, max_pages: int, deadline: float) -> str:
    """Read in a child process limited in memory and processor time (extraction.py): a
    decompression bomb ends that process, never the worker."""
    return text_extract_in_child(
        reader=reader,
        data=data,
        max_pages=max_pages,
        max_seconds=deadline - time.monotonic(),
        max_chars=_limit("EXTRACTED_TEXT_MAX_CHARS", EXTRACTED_TEXT_MAX_CHARS),
        max_memory_bytes=_limit("EXTRACT_MAX_MEMORY_BYTES", EXTRACT_MAX_MEMORY_BYTES),
    )


def attachment_extract_text(*, attachment: Attachment) -> Attachment | None:
    """Fill ``extracted_text`` (done) or ``extraction_error`` (failed), then refresh the
    candidate's resume text. Never raises for a bad file. None: the attachment was deleted
    while its text was read (nothing left to fill in)."""
    max_chars = _limit("EXTRACTED_TEXT_MAX_CHARS", EXTRACTED_TEXT_MAX_CHARS)
    deadline = time.monotonic() + _limit("EXTRACT_MAX_SECONDS", EXTRACT_MAX_SECONDS)
    try:
        with attachment.file.open("rb") as stored:
            data = stored.read()  # at most the upload limit
        if attachment.content_type == PDF:
            text = _extract_pdf(
                data,
                max_pages=_limit("EXTRACT_MAX_PAGES", EXTRACT_MAX_PAGES),
                deadline=deadline,
            )
        elif attachment.content_type == DOCX:
            text = _extract_docx(data, deadline=deadline)
        else:
            raise ValueError(f"No text reader for {attachment.content_type}.")
    except Exception as error:  # a broken or hostile file must not break the worker
        logger.info("Text extraction failed for attachment %s: %r", attachment.pk, error)
        attachment.extracted_text = ""
        attachment.extraction_status = Attachment.Extraction.FAILED
        attachment.extraction_error = (str(error) or error.__class__.__name__)[:255]
    else:
        attachment.extracted_text = _clean_text(text)[:max_chars]
        attachment.extraction_status = Attachment.Extraction.DONE
        attachment.extraction_error = ""
    # The attachment may have been deleted while its text was read, or moved to another
    # profile by a merge: the text goes to the row as it is now, and the resume text of the
    # profile that has it now is refreshed. That profile is locked before the row is written
    # (the order a merge locks them in), and the row is written only if it still belongs to
    # it; if a merge moved it in between, read its owner again.
    while True:
        owner = (
            Attachment.objects.filter(pk=attachment.pk)
            .values_list("candidate_id", flat=True)
            .first()
        )
        if owner is None:
            logger.info("Attachment %s was deleted during text extraction.", attachment.pk)
            return None
        with transaction.atomic():
            Candidate.objects.select_for_update().filter(pk=owner).first()
            written = Attachment.objects.filter(pk=attachment.pk, candidate_id=owner).update(
                extracted_text=attachment.extracted_text,
                extraction_status=attachment.extraction_status,
                extraction_error=attachment.extraction_error,
            )
            if written:
                attachment.candidate_id = owner
                candidate_refresh_resume_text(candidate_id=owner)
                return attachment


_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean_text(text: str) -> str:
    return _BLANK_LINES.sub("\n\n", _CONTROL.sub(" ", text)).strip()


def candidate_refresh_resume_text(*, candidate_id: int) -> None:
    """resume_text = the text of the candidate's resumes (oldest first), truncated; has_resume
    = they have one. The database trigger then refreshes the search vector."""
    with transaction.atomic():
        # Lock the candidate so that two extractions finishing together do not interleave.
        candidate = Candidate.objects.select_for_update().filter(pk=candidate_id).first()
        if candidate is None:
            return
        resumes = Attachment.objects.filter(
            candidate_id=candidate_id, kind=Attachment.Kind.RESUME
        ).order_by("uploaded_at", "id")
        texts = list(resumes.values_list("extracted_text", flat=True))
        resume_text = "\n\n".join(text for text in texts if text)[
            : _limit("RESUME_TEXT_MAX_CHARS", RESUME_TEXT_MAX_CHARS)
        ]
        has_resume = bool(texts)
        if (candidate.resume_text, candidate.has_resume) != (resume_text, has_resume):
            Candidate.objects.filter(pk=candidate_id).update(
                resume_text=resume_text, has_resume=has_resume
            )
