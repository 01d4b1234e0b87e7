import io
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.contrib.postgres.search import SearchQuery
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Activity, Attachment, Candidate
from candidates.services import attachments
from candidates.services.attachments import (
    DOCX,
    PDF,
    attachment_clean_name,
    attachment_create,
    attachment_delete,
)
from candidates.services.merge import candidate_merge
from candidates.services.profiles import candidates_delete
from candidates.tasks import attachment_extract_text
from candidates.tests.factories import CandidateFactory, make_attachment, make_docx, make_pdf

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 64

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(org):
    return CandidateFactory(organization=org, first_name="Ada", last_name="Lovelace")


def _upload_url(org, candidate):
    return reverse("candidates:attachment_upload", args=[org.slug, candidate.pk])


def _upload(client, org, candidate, content, name, *, htmx=False, kind="resume"):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        _upload_url(org, candidate),
        {"file": SimpleUploadedFile(name, content), "kind": kind},
        headers=headers,
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _messages(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- upload -------------------------------------------------------------------------------


def test_attachment_upload_valid_pdf_is_stored_privately(
    recruiter_client, recruiter_user, org, candidate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(recruiter_client, org, candidate, make_pdf("Hello"), "Ada CV.pdf")

    assert response.status_code == 302
    assert response["Location"].endswith(f"/candidates/{candidate.pk}/#files")
    with scopes_disabled():
        attachment = Attachment.objects.get(candidate=candidate)
        activity = Activity.objects.get(candidate=candidate)
        candidate.refresh_from_db()
    assert (attachment.original_name, attachment.content_type, attachment.kind) == (
        "Ada CV.pdf",
        PDF,
        "resume",
    )
    assert attachment.uploaded_by == recruiter_user
    assert attachment.file.name.startswith(f"attachments/{org.pk}/")
    assert "Ada" not in attachment.file.name
    assert default_storage.exists(attachment.file.name)
    assert attachment.extraction_status == Attachment.Extraction.PENDING
    assert (activity.kind, activity.actor) == (Activity.Kind.ATTACHMENT_ADDED, recruiter_user)
    assert candidate.has_resume is True
    assert len(callbacks) == 1  # text extraction is queued after commit


def test_attachment_upload_valid_docx_is_accepted(recruiter_client, org, candidate):
    response = _upload(recruiter_client, org, candidate, make_docx("Hello"), "cv.docx")

    assert response.status_code == 302
    with scopes_disabled():
        assert Attachment.objects.get(candidate=candidate).content_type == DOCX


def test_attachment_upload_png_renamed_pdf_is_rejected_next_to_the_field(
    recruiter_client, org, candidate
):
    response = _upload(recruiter_client, org, candidate, PNG, "photo.pdf", htmx=True)

    assert response.status_code == 200
    body = response.content.decode()
    assert "not a PDF or a Word (.docx) document" in body
    assert 'id="id_attachment_file_errors"' in body
    with scopes_disabled():
        assert not Attachment.objects.exists()


def test_attachment_upload_exe_renamed_pdf_is_rejected_with_a_message(
    recruiter_client, org, candidate
):
    response = _upload(recruiter_client, org, candidate, EXE, "resume.pdf")

    assert response.status_code == 302
    assert any("not a PDF or a Word" in message for message in _messages(response))
    with scopes_disabled():
        assert not Attachment.objects.exists()


def test_attachment_upload_oversized_is_rejected(recruiter_client, org, candidate, settings):
    settings.ATTACHMENT_MAX_UPLOAD_BYTES = 1000
    response = _upload(recruiter_client, org, candidate, make_pdf("x" * 2000), "big.pdf", htmx=True)

    assert "the limit is 1000" in response.content.decode()
    with scopes_disabled():
        assert not Attachment.objects.exists()


def test_attachment_sizes_and_limit_have_no_needless_decimal(
    recruiter_client, org, candidate, settings
):
    page = recruiter_client.get(
        reverse("candidates:detail", args=[org.slug, candidate.pk])
    ).content.decode()
    settings.ATTACHMENT_MAX_UPLOAD_BYTES = 1024
    refused = _upload(recruiter_client, org, candidate, make_pdf("x" * 2000), "big.pdf", htmx=True)

    assert "PDF or Word (.docx), up to 10\xa0MB." in page
    assert "; the limit is 1\xa0KB." in refused.content.decode()


def test_attachment_upload_zip_bomb_docx_is_rejected_before_extracting(
    recruiter_client, org, candidate
):
    bomb = _zip(
        {
            "[Content_Types].xml": b"<Types/>",
            "word/document.xml": b"\x00" * (20 * 1024 * 1024),  # ~1000:1
        }
    )
    assert len(bomb) < 100_000

    response = _upload(recruiter_client, org, candidate, bomb, "cv.docx", htmx=True)

    assert "compressed suspiciously well" in response.content.decode()
    with scopes_disabled():
        assert not Attachment.objects.exists()


def test_attachment_upload_docx_with_too_many_parts_is_rejected(recruiter_client, org, candidate):
    members = {f"word/part{index}.xml": b"<x/>" for index in range(1001)}
    members |= {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}

    response = _upload(recruiter_client, org, candidate, _zip(members), "cv.docx", htmx=True)

    assert "too many parts" in response.content.decode()


def test_attachment_upload_docx_over_the_expanded_size_limit_is_rejected(
    recruiter_client, org, candidate, settings
):
    settings.ATTACHMENT_DOCX_MAX_UNCOMPRESSED_BYTES = 1000

    response = _upload(recruiter_client, org, candidate, make_docx("Hi"), "cv.docx", htmx=True)

    assert "expands to too much data" in response.content.decode()


def test_attachment_upload_zip_that_is_not_a_word_document_is_rejected(
    recruiter_client, org, candidate
):
    archive = _zip({"hello.txt": b"hello"})

    response = _upload(recruiter_client, org, candidate, archive, "cv.docx", htmx=True)

    assert "not a valid Word (.docx) document" in response.content.decode()


def test_attachment_upload_viewer_is_forbidden(viewer_client, org, candidate):
    response = _upload(viewer_client, org, candidate, make_pdf(), "cv.pdf")

    assert response.status_code == 403


def test_attachment_upload_other_org_is_not_found(outsider_client, other_org, org, candidate):
    # with the other organisation's own slug: the candidate id belongs to `org`
    url = reverse("candidates:attachment_upload", args=[other_org.slug, candidate.pk])
    response = outsider_client.post(url, {"file": SimpleUploadedFile("cv.pdf", make_pdf())})

    assert response.status_code == 404


def test_attachment_upload_anonymous_goes_to_login(client, org, candidate):
    response = _upload(client, org, candidate, make_pdf(), "cv.pdf")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_attachment_clean_name_strips_paths_and_control_characters():
    assert attachment_clean_name("C:\\Users\\ada\\cv.pdf") == "cv.pdf"
    assert attachment_clean_name("../../etc/passwd") == "passwd"
    assert attachment_clean_name('bad\r\nname".pdf') == 'bad name".pdf'
    assert attachment_clean_name("") == "file"


# --- text extraction ----------------------------------------------------------------------


def _create(candidate, content, name, django_capture_on_commit_callbacks):
    with scopes_disabled(), django_capture_on_commit_callbacks():
        return attachment_create(
            candidate=candidate, uploaded_file=SimpleUploadedFile(name, content)
        )


def _findable(org, word):
    with scopes_disabled():
        return list(
            Candidate.objects.filter(
                organization=org, search_vector=SearchQuery(word, config="english")
            ).values_list("pk", flat=True)
        )


def test_attachment_extract_text_pdf_makes_the_candidate_findable(
    org, candidate, django_capture_on_commit_callbacks
):
    attachment = _create(
        candidate,
        make_pdf("Experienced quantum cryptographer"),
        "cv.pdf",
        django_capture_on_commit_callbacks,
    )
    assert _findable(org, "cryptographer") == []

    result = attachment_extract_text.apply(
        kwargs={"organization_id": org.pk, "attachment_id": attachment.pk}
    )

    assert result.get() == "done"
    with scopes_disabled():
        attachment.refresh_from_db()
        candidate.refresh_from_db()
    assert "quantum cryptographer" in attachment.extracted_text
    assert "quantum cryptographer" in candidate.resume_text
    assert candidate.has_resume is True
    assert _findable(org, "cryptographer") == [candidate.pk]


def test_attachment_extract_text_docx_joins_every_resume(
    org, candidate, django_capture_on_commit_callbacks
):
    first = _create(candidate, make_pdf("Astronomer"), "a.pdf", django_capture_on_commit_callbacks)
    second = _create(
        candidate,
        make_docx("Seasoned", "Beekeeper and gardener"),
        "b.docx",
        django_capture_on_commit_callbacks,
    )

    for attachment in (first, second):
        attachment_extract_text.apply(
            kwargs={"organization_id": org.pk, "attachment_id": attachment.pk}
        )

    with scopes_disabled():
        candidate.refresh_from_db()
    assert candidate.resume_text == "Astronomer\n\nSeasoned\nBeekeeper and gardener"
    assert _findable(org, "beekeepers") == [candidate.pk]


def test_attachment_extract_text_broken_file_is_marked_failed(org, candidate):
    attachment = make_attachment(candidate, content=b"%PDF-1.4 this is not really a pdf")

    result = attachment_extract_text.apply(
        kwargs={"organization_id": org.pk, "attachment_id": attachment.pk}
    )

    assert result.get() == "failed"
    with scopes_disabled():
        attachment.refresh_from_db()
    assert attachment.extraction_status == Attachment.Extraction.FAILED
    assert attachment.extraction_error != ""


def test_attachment_extract_text_of_a_deleted_attachment_does_nothing(org):
    result = attachment_extract_text.apply(kwargs={"organization_id": org.pk, "attachment_id": 0})

    assert result.get() is None


def test_attachment_extract_text_of_an_attachment_deleted_meanwhile_ends_quietly(
    org, candidate, recruiter_user, monkeypatch, caplog
):
    """The recruiter deletes the file while the worker reads it: the task writes nothing and
    ends without an error (before: save(update_fields=…) raised DatabaseError in the worker)."""
    attachment = make_attachment(candidate, content=make_pdf("Astronomer"))

    def read_while_deleted(handle, **kwargs):
        attachment_delete(attachment=Attachment.objects.get(pk=attachment.pk), actor=recruiter_user)
        return "Astronomer"

    monkeypatch.setattr(attachments, "_extract_pdf", read_while_deleted)

    with caplog.at_level("INFO", logger="candidates.services.attachments"):
        result = attachment_extract_text.apply(
            kwargs={"organization_id": org.pk, "attachment_id": attachment.pk}
        )

    assert result.get() is None
    assert f"Attachment {attachment.pk} was deleted during text extraction." in caplog.messages
    with scopes_disabled():
        assert not Attachment.objects.filter(pk=attachment.pk).exists()
        candidate.refresh_from_db()
    assert (candidate.resume_text, candidate.has_resume) == ("", False)


def test_attachment_extract_text_finishing_after_a_merge_refreshes_the_profile_with_the_file(org):
    """The worker loaded the resume of a profile that is then merged into another: the text
    goes to the profile that has the file now."""
    primary = CandidateFactory(organization=org)
    secondary = CandidateFactory(organization=org)
    attachment = make_attachment(secondary, content=make_pdf("Experienced quantum cryptographer"))
    with scopes_disabled():
        loaded = Attachment.objects.get(pk=attachment.pk)
        candidate_merge(primary=primary, secondary=secondary, field_choices={}, actor=None)

        extracted = attachments.attachment_extract_text(attachment=loaded)

        primary.refresh_from_db()
        secondary.refresh_from_db()
    assert extracted.candidate_id == primary.pk
    assert "quantum cryptographer" in primary.resume_text
    assert (secondary.resume_text, secondary.has_resume) == ("", False)
    assert _findable(org, "cryptographer") == [primary.pk]


# --- download -----------------------------------------------------------------------------


def _download_url(org, attachment):
    return reverse("candidates:attachment_download", args=[org.slug, attachment.pk])


def test_attachment_download_is_an_attachment_with_nosniff(viewer_client, org, candidate):
    content = make_pdf("Hello")
    attachment = make_attachment(candidate, content=content, name='Ada "CV".pdf')

    response = viewer_client.get(_download_url(org, attachment))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Ada \\"CV\\".pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_attachment_download_non_ascii_name_is_rfc_6266_encoded(viewer_client, org, candidate):
    attachment = make_attachment(candidate, name="Zoë Brontë.pdf")

    response = viewer_client.get(_download_url(org, attachment))

    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''Zo%C3%AB%20Bront%C3%AB.pdf"
    )


def test_attachment_download_other_org_is_not_found(outsider_client, other_org, candidate):
    attachment = make_attachment(candidate)

    response = outsider_client.get(
        reverse("candidates:attachment_download", args=[other_org.slug, attachment.pk])
    )

    assert response.status_code == 404


def test_attachment_download_anonymous_goes_to_login(client, org, candidate):
    response = client.get(_download_url(org, make_attachment(candidate)))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- delete -------------------------------------------------------------------------------


def test_attachment_delete_removes_the_row_the_file_and_the_resume_text(
    recruiter_client, recruiter_user, org, candidate, django_capture_on_commit_callbacks
):
    attachment = make_attachment(
        candidate, name="Ada CV.pdf", extracted_text="Zookeeper", extraction_status="done"
    )
    with scopes_disabled():
        Candidate.objects.filter(pk=candidate.pk).update(resume_text="Zookeeper", has_resume=True)
    path = attachment.file.name

    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            reverse("candidates:attachment_delete", args=[org.slug, attachment.pk])
        )

    assert response.status_code == 302
    with scopes_disabled():
        assert not Attachment.objects.filter(pk=attachment.pk).exists()
        candidate.refresh_from_db()
    assert not default_storage.exists(path)
    assert (candidate.resume_text, candidate.has_resume) == ("", False)
    with scopes_disabled():
        entry = Activity.objects.get(candidate=candidate)
    assert (entry.kind, entry.summary, entry.actor) == (
        "edited",
        "Resume deleted: Ada CV.pdf",
        recruiter_user,
    )


def test_attachment_delete_viewer_is_forbidden(viewer_client, org, candidate):
    attachment = make_attachment(candidate)

    response = viewer_client.post(
        reverse("candidates:attachment_delete", args=[org.slug, attachment.pk])
    )

    assert response.status_code == 403
    with scopes_disabled():
        assert Attachment.objects.filter(pk=attachment.pk).exists()


def test_attachment_delete_other_org_is_not_found(outsider_client, other_org, candidate):
    attachment = make_attachment(candidate)

    response = outsider_client.post(
        reverse("candidates:attachment_delete", args=[other_org.slug, attachment.pk])
    )

    assert response.status_code == 404


def test_attachment_delete_get_is_not_allowed(recruiter_client, org, candidate):
    attachment = make_attachment(candidate)

    response = recruiter_client.get(
        reverse("candidates:attachment_delete", args=[org.slug, attachment.pk])
    )

    assert response.status_code == 405


def test_bulk_delete_of_a_candidate_removes_their_stored_files(
    org, admin_user, candidate, django_capture_on_commit_callbacks
):
    from candidates.services.bulk import bulk_start

    paths = [make_attachment(candidate).file.name, make_attachment(candidate).file.name]

    with scopes_disabled(), django_capture_on_commit_callbacks(execute=True):
        bulk_start(
            organization=org,
            actor=admin_user,
            action="delete",
            args={},
            selection={"ids": [candidate.pk]},
        )

    with scopes_disabled():
        assert not Attachment.objects.filter(candidate_id=candidate.pk).exists()
    assert [default_storage.exists(path) for path in paths] == [False, False]


def test_deleting_a_candidate_in_the_admin_removes_their_stored_files(
    client, candidate, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    path = make_attachment(candidate).file.name
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:candidates_candidate_delete", args=[candidate.pk]), {"post": "yes"}
        )

    assert response.status_code == 302
    assert not default_storage.exists(path)


def test_deleting_attachments_in_the_admin_removes_their_stored_files(
    client, candidate, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    one, two, three = (make_attachment(candidate, name=f"cv{n}.pdf") for n in range(3))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks(execute=True):
        single = client.post(
            reverse("admin:candidates_attachment_delete", args=[one.pk]), {"post": "yes"}
        )
        bulk = client.post(
            reverse("admin:candidates_attachment_changelist"),
            {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
        )

    assert (single.status_code, bulk.status_code) == (302, 302)
    with scopes_disabled():
        assert not Attachment.objects.filter(candidate_id=candidate.pk).exists()
        removals = Activity.objects.filter(candidate=candidate, summary__contains="deleted")
        assert removals.count() == 3
    assert [default_storage.exists(a.file.name) for a in (one, two, three)] == [False] * 3


def test_a_rolled_back_candidate_delete_keeps_their_stored_files(
    candidate, django_capture_on_commit_callbacks
):
    path = make_attachment(candidate).file.name

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        scopes_disabled(),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        candidates_delete(candidate_ids=[candidate.pk])
        raise RuntimeError("something later in the transaction failed")

    assert callbacks == []
    with scopes_disabled():
        assert Attachment.objects.filter(candidate_id=candidate.pk).exists()
    assert default_storage.exists(path)


# --- the profile's Files card ------------------------------------------------------------


def test_attachment_profile_card_lists_files_and_hides_the_form_from_viewers(
    viewer_client, recruiter_client, org, candidate
):
    make_attachment(candidate, name="Ada-resume.pdf", extraction_status="done")
    url = reverse("candidates:detail", args=[org.slug, candidate.pk])

    as_viewer = viewer_client.get(url).content.decode()
    as_recruiter = recruiter_client.get(url).content.decode()

    assert "Ada-resume.pdf" in as_viewer
    assert "Searchable" in as_viewer
    assert "Add a file" not in as_viewer
    assert "Add a file" in as_recruiter
