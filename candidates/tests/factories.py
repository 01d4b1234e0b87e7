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
