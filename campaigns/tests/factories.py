"""Factories and helpers of the campaigns tests (run under scopes_disabled)."""

from contextlib import contextmanager

import factory
from django_scopes import scopes_disabled

from campaigns.models import Campaign, EmailTemplate, Step
from candidates.models import SavedSearch
from candidates.tests.factories import CandidateFactory
from tests.factories import OrganizationFactory, ScopesDisabledFactory, UserFactory

BODY = (
    'Hi {{ first_name|default("there") }},\n\n'
    "We are hiring for a role close to **{{ current_title }}**. "
    "[See the role](https://jobs.example.com/roles/42?ref=mail&x=1).\n\n"
    "{{ recruiter.name }}"
)


class EmailTemplateFactory(ScopesDisabledFactory):
    class Meta:
        model = EmailTemplate

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "A role for you, {{ first_name }}"
    preheader = "Quick note from {{ organization_name }}"
    body_markdown = BODY


class SavedSearchFactory(ScopesDisabledFactory):
    class Meta:
        model = SavedSearch

    organization = factory.SubFactory(OrganizationFactory)
    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Search {n}")
    query = factory.LazyFunction(lambda: {"tags": ["newsletter"]})


def verified_sending_domain(org):
    """The SendingDomain of `org`'s sender address, verified (without a DNS lookup): what
    OrganizationFactory gives every organisation, and what a test that changes the sender
    address calls for the new one."""
    from campaigns.services.domains import sending_domain_mark_verified

    with scopes_disabled():
        return sending_domain_mark_verified(organization=org)


def make_candidates(org, count, *, tags=("newsletter",), **fields):
    return [CandidateFactory(organization=org, tags=list(tags), **fields) for _ in range(count)]


def make_broadcast(org, *, user, tag="newsletter", body=BODY, topic="jobs", **fields) -> Campaign:
    """A draft broadcast to everyone tagged `tag`, with one email step."""
    search = SavedSearchFactory(organization=org, owner=user, query={"tags": [tag]})
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name=fields.pop("name", "Spring roles"),
            topic=topic,
            sender=user,
            created_by=user,
            **fields,
        )
        campaign.saved_searches.set([search])
        Step.objects.create(
            organization=org,
            campaign=campaign,
            position=1,
            subject="A role for you, {{ first_name }}",
            preheader="From {{ organization_name }}",
            body_markdown=body,
        )
    return campaign


def send_all(org, campaign):
    """Send every message of `campaign` in one task body, as the send task would."""
    from django_scopes import scope

    from campaigns.models import Message
    from campaigns.services.sending import messages_send

    with scopes_disabled():
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org):
        return messages_send(organization=org, message_ids=ids)


def profile_email_preferences(html: str) -> dict[str, str]:
    """The "Their email preferences" rows of a profile page: {label: value}, whitespace
    collapsed (empty when the candidate has no preferences row)."""
    import re

    section = html.split('id="email-preferences"', 1)[1].split("</dl>", 1)[0]
    return {
        " ".join(label.split()): " ".join(value.split())
        for label, value in re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", section, re.S)
    }


def free_port() -> int:
    """A local TCP port that nothing listens on (yet): for a server a test starts, or one it
    wants to be down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_relay(settings, handler, *, port: int | None = None):
    """An SMTP relay (aiosmtpd, the outside world) running `handler` on a local port, with
    Django's SMTP backend pointed at it while the block runs. Yields the handler."""
    from aiosmtpd.controller import Controller

    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = False
    try:
        yield handler
    finally:
        controller.stop()
