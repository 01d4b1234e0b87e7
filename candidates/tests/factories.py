"""factory_boy factories of the candidates app. They run under scopes_disabled() (see
tests/factories.ScopesDisabledFactory). Each area appends its factories below."""

import factory
from django_scopes import scopes_disabled

from candidates.demo import minimal_pdf
from candidates.models import Candidate, CandidateContact
from tests.factories import OrganizationFactory, ScopesDisabledFactory


class CandidateFactory(ScopesDisabledFactory):
    class Meta:
        model = Candidate
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"candidate{n}@example.com")
    current_title = "Software Engineer"
    current_company = factory.Sequence(lambda n: f"Company {n}")
    city = "London"
    country = "United Kingdom"

    @factory.post_generation
    def last_contacted_at(candidate, create, when, **kwargs):
        """`CandidateFactory(last_contacted_at=…)`: its CandidateContact row."""
        if create and when:
            with scopes_disabled():
                CandidateContact.objects.create(
                    candidate=candidate,
                    organization_id=candidate.organization_id,
                    last_contacted_at=when,
                )


# --- profiles, notes, custom fields ---


class NoteFactory(ScopesDisabledFactory):
    class Meta:
        model = "candidates.Note"

    candidate = factory.SubFactory(CandidateFactory)
    organization = factory.SelfAttribute("candidate.organization")
    author = factory.SubFactory("tests.factories.UserFactory")
    body = factory.Faker("paragraph")


class CustomFieldFactory(ScopesDisabledFactory):
    class Meta:
        model = "candidates.CustomField"

    organization = factory.SubFactory(OrganizationFactory)
    label = factory.Sequence(lambda n: f"Field {n}")
    key = factory.Sequence(lambda n: f"field_{n}")
    field_type = "text"


# --- attachments: real small files, built by hand ---


def make_pdf(text: str = "Hello") -> bytes:
    """A minimal valid one-page PDF that shows `text` in Helvetica."""
    return minimal_pdf([text])


def make_docx(*paragraphs: str) -> bytes:
    import io

    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_attachment(candidate, *, content: bytes | None = None, name="resume.pdf", **fields):
    """An Attachment row with a stored file (no upload checks, no timeline entry)."""
    from django.core.files.base import ContentFile
    from django_scopes import scopes_disabled

    from candidates.models import Attachment

    content = make_pdf("Attachment") if content is None else content
    with scopes_disabled():
        attachment = Attachment(
            organization_id=candidate.organization_id,
            candidate=candidate,
            original_name=name,
            content_type=fields.pop("content_type", "application/pdf"),
            size=len(content),
            **fields,
        )
        attachment.file.save("upload", ContentFile(content))
    return attachment


def bulk_job_stopped_after_batch(job, *, ids: list[int], actor, counted: bool = True) -> int:
    """Carry out one batch of a bulk `job` by hand, as a worker did before it died, and leave
    the job failed. With `counted` the job had recorded the batch (its cursor at the batch's
    last id, its counts taken): Resume continues after it. Without, the worker died before
    recording it: Resume does the batch again. Returns how many the batch changed."""
    from candidates.models import Job
    from candidates.services.bulk import bulk_apply_batch

    with scopes_disabled():
        changed = bulk_apply_batch(
            organization_id=job.organization_id,
            action=job.params["action"],
            args=job.params["args"],
            ids=ids,
            actor=actor,
        )
        stopped = {"status": Job.Status.FAILED, "error": "The job stopped (OperationalError)."}
        if counted:
            stopped |= {
                "processed": len(ids),
                "params": {**job.params, "cursor": ids[-1]},
                "result": {"changed": changed, "unchanged": len(ids) - changed},
            }
        Job.objects.filter(pk=job.pk).update(**stopped)
        job.refresh_from_db()
    return changed
