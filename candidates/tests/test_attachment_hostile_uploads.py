"""Uploads built to trip the checks: zip archives zipfile cannot open, and names that hide what
the file is (a wrong extension, bidirectional controls)."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Attachment
from candidates.services.attachments import DOCX, PDF, attachment_clean_name
from candidates.tests.factories import CandidateFactory, make_docx, make_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(org):
    return CandidateFactory(organization=org, first_name="Ada", last_name="Lovelace")


def _upload(client, org, candidate, content: bytes, name: str, *, htmx=False):
    return client.post(
        reverse("candidates:attachment_upload", args=[org.slug, candidate.pk]),
        {"file": SimpleUploadedFile(name, content), "kind": "resume"},
        headers={"HX-Request": "true"} if htmx else {},
    )


def docx_needing_zip_version(version: int) -> bytes:
    """A Word document whose central directory says it needs zip version `version` / 10 to
    extract: zipfile refuses anything past 6.3 with NotImplementedError when it opens it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    data = bytearray(buffer.getvalue())
    entry = data.find(b"PK\x01\x02")  # the first central directory entry
    data[entry + 6] = version  # its "version needed to extract"
    return bytes(data)


def test_attachment_upload_docx_of_an_unknown_zip_version_is_a_form_error(
    recruiter_client, org, candidate
):
    recruiter_client.raise_request_exception = False

    response = _upload(
        recruiter_client, org, candidate, docx_needing_zip_version(240), "cv.docx", htmx=True
    )

    assert response.status_code == 200
    assert "not a valid Word (.docx) document" in response.content.decode()
    with scopes_disabled():
        assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "stored"),
    [
        ("cv.bat", make_pdf(), "cv.bat.pdf"),
        ("Ada Lovelace CV\u202efdp.bat", make_pdf(), "Ada Lovelace CVfdp.bat.pdf"),
        ("Resume v2.1", make_pdf(), "Resume v2.1.pdf"),
        ("cv.PDF", make_pdf(), "cv.PDF"),
        ("cv.pdf", make_docx("Hello"), "cv.pdf.docx"),
        ("cv.docx", make_docx("Hello"), "cv.docx"),
    ],
)
def test_attachment_download_name_ends_in_the_extension_of_the_detected_type(
    recruiter_client, viewer_client, org, candidate, name, content, stored
):
    response = _upload(recruiter_client, org, candidate, content, name)
    assert response.status_code == 302
    with scopes_disabled():
        attachment = Attachment.objects.get(candidate=candidate)

    download = viewer_client.get(
        reverse("candidates:attachment_download", args=[org.slug, attachment.pk])
    )

    assert attachment.original_name == stored
    assert download["Content-Disposition"] == f'attachment; filename="{stored}"'


def test_attachment_clean_name_keeps_the_detected_extension_when_it_cuts_a_long_name():
    name = attachment_clean_name("x" * 300 + ".exe", content_type=PDF)

    assert (len(name), name[-8:]) == (200, "xxxx.pdf")
    assert attachment_clean_name("", content_type=DOCX) == "file.docx"


def test_attachment_stored_before_names_got_their_type_downloads_with_it(org, recruiter_client):
    """A file stored under its uploader's name alone (before upload added the detected
    type's extension) is still offered for download with that extension."""
    from django_scopes import scopes_disabled

    from candidates.models import Attachment
    from candidates.tests.factories import CandidateFactory, make_attachment, make_pdf

    candidate = CandidateFactory(organization=org)
    attachment = make_attachment(candidate, content=make_pdf("Old file"), name="cv.bat")
    with scopes_disabled():
        Attachment.objects.filter(pk=attachment.pk).update(original_name="cv.bat")
    response = recruiter_client.get(f"/o/{org.slug}/candidates/files/{attachment.pk}/download/")
    assert response.status_code == 200
    assert 'filename="cv.bat.pdf"' in response["Content-Disposition"]
