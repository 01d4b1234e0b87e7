"""The tenant isolation sweep.

Every URL pattern of the project is enumerated from the resolver. Each one under
/o/<org_slug>/ is requested (GET and POST) by a logged-in admin of organisation B:

1. with organisation A's slug and A's objects — the middleware must answer 404;
2. with B's own slug but A's objects in the other URL arguments — the view's access helper
   must answer 404 (no object of another tenant is reachable by id); a POST-only view may
   answer a GET with 405, which it does before looking at any object;

and no answer may contain A's data. A URL keyword argument that this file does not know how to
fill makes the test fail, so every new view is covered by construction: add an entry to
OBJECT_KWARGS that creates an object of the given organisation and returns the value.
URLs outside /o/<org_slug>/ must be listed in PUBLIC_URL_NAMES with a reason.
"""

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_scopes import scopes_disabled

from crm.models import Invitation, Membership, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

SECRET_MARKER = "Zanzibar-Quillfeather"  # appears in organisation A's data and nowhere else


def _membership(org) -> int:
    return MembershipFactory(organization=org, role=Role.RECRUITER).pk


def _invitation(org) -> int:
    with scopes_disabled():
        return Invitation.objects.create(
            organization=org,
            email=f"{SECRET_MARKER.lower()}@example.com",
            token_hash=secrets.token_hex(32),
            expires_at="2099-01-01T00:00:00Z",
        ).pk


def _candidate(org) -> int:
    from candidates.models import Candidate

    with scopes_disabled():
        return Candidate.objects.create(
            organization=org,
            first_name=SECRET_MARKER,
            last_name="Candidate",
            email=f"{secrets.token_hex(4)}@example.com",
        ).pk


def _job(org) -> int:
    from candidates.models import Job

    with scopes_disabled():
        return Job.objects.create(
            organization=org, kind=Job.Kind.EXPORT, input_name=f"{SECRET_MARKER}.csv"
        ).pk


def _note(org) -> int:
    from candidates.models import Candidate, Note

    with scopes_disabled():
        candidate = Candidate.objects.get(pk=_candidate(org))
        return Note.objects.create(
            organization=org, candidate=candidate, body=f"{SECRET_MARKER} note"
        ).pk


def _custom_field(org) -> int:
    from candidates.models import CustomField

    with scopes_disabled():
        return CustomField.objects.create(
            organization=org, key=f"f_{secrets.token_hex(4)}", label=f"{SECRET_MARKER} field"
        ).pk


def _attachment(org) -> int:
    from django.core.files.base import ContentFile

    from candidates.models import Attachment

    with scopes_disabled():
        attachment = Attachment(
            organization=org,
            candidate_id=_candidate(org),
            original_name=f"{SECRET_MARKER}.pdf",
            content_type="application/pdf",
            size=20,
        )
        attachment.file.save("upload", ContentFile(b"%PDF-1.4 " + SECRET_MARKER.encode()))
        return attachment.pk


def _duplicate_suggestion(org) -> int:
    from candidates.models import DuplicateSuggestion

    first, second = sorted([_candidate(org), _candidate(org)])
    with scopes_disabled():
        return DuplicateSuggestion.objects.create(
            organization=org, candidate_a_id=first, candidate_b_id=second, reason="email"
        ).pk


def _merge(org) -> int:
    from candidates.models import Candidate, MergeRecord

    primary, secondary = _candidate(org), _candidate(org)
    with scopes_disabled():
        Candidate.objects.filter(pk=secondary).update(merged_into_id=primary)
        return MergeRecord.objects.create(
            organization=org, primary_id=primary, secondary_id=secondary
        ).pk


def _saved_search(org) -> int:
    from candidates.models import SavedSearch

    owner = MembershipFactory(organization=org, role=Role.RECRUITER).user
    with scopes_disabled():
        return SavedSearch.objects.create(
            organization=org, owner=owner, name=SECRET_MARKER, query={"q": [SECRET_MARKER]}
        ).pk


# --- pipelines: pools, stages, cards, roles, follow-ups ---


def _pool(org) -> int:
    from pipelines.models import Pool

    with scopes_disabled():
        return Pool.objects.create(organization=org, name=f"{SECRET_MARKER} pool").pk


def _stage(org) -> int:
    from pipelines.models import Stage

    with scopes_disabled():
        return Stage.objects.create(
            organization=org, name=f"{SECRET_MARKER} {secrets.token_hex(3)}"
        ).pk


def _pool_membership(org) -> int:
    from django.utils import timezone

    from pipelines.models import PoolMembership

    now = timezone.now()
    with scopes_disabled():
        return PoolMembership.objects.create(
            organization=org,
            pool_id=_pool(org),
            candidate_id=_candidate(org),
            stage_id=_stage(org),
            entered_stage_at=now,
            added_at=now,
        ).pk


def _hiring_role(org) -> int:
    from pipelines.models import HiringRole

    with scopes_disabled():
        return HiringRole.objects.create(organization=org, title=f"{SECRET_MARKER} role").pk


def _follow_up(org) -> int:
    from pipelines.models import FollowUp

    with scopes_disabled():
        return FollowUp.objects.create(
            organization=org,
            candidate_id=_candidate(org),
            due_on="2030-01-01",
            note=f"{SECRET_MARKER} follow-up",
        ).pk


# --- campaigns ---


def _email_template(org) -> int:
    from campaigns.models import EmailTemplate

    with scopes_disabled():
        return EmailTemplate.objects.create(
            organization=org,
            name=f"{SECRET_MARKER} {secrets.token_hex(3)}",
            subject=SECRET_MARKER,
            body_markdown=f"Hello {SECRET_MARKER}",
        ).pk


def _campaign(org) -> int:
    from campaigns.models import Campaign, Step

    with scopes_disabled():
        campaign = Campaign.objects.create(organization=org, name=f"{SECRET_MARKER} campaign")
        Step.objects.create(
            organization=org, campaign=campaign, subject=SECRET_MARKER, body_markdown="Hi"
        )
        return campaign.pk


def _campaign_message(org) -> int:
    from campaigns.models import Campaign, Message

    with scopes_disabled():
        campaign = Campaign.objects.get(pk=_campaign(org))
        return Message.objects.create(
            organization=org,
            campaign=campaign,
            step=campaign.steps.first(),
            to_email="someone@example.com",
            from_email="x@example.com",
            subject=SECRET_MARKER,
            html=SECRET_MARKER,
            text=SECRET_MARKER,
            message_id=f"<{secrets.token_hex(8)}@example.com>",
        ).pk


def _topic(org) -> int:
    from campaigns.models import Topic

    with scopes_disabled():
        return Topic.objects.create(
            organization=org,
            key=f"t-{secrets.token_hex(4)}",
            name=f"{SECRET_MARKER} {secrets.token_hex(3)}",
        ).pk


def _role_family(org) -> int:
    from campaigns.models import RoleFamily

    with scopes_disabled():
        return RoleFamily.objects.create(
            organization=org,
            key=f"f-{secrets.token_hex(4)}",
            name=f"{SECRET_MARKER} {secrets.token_hex(3)}",
        ).pk


def _sequence_step(org) -> int:
    from campaigns.models import Campaign, Step

    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org, name=f"{SECRET_MARKER} sequence", kind=Campaign.Kind.SEQUENCE
        )
        return Step.objects.create(
            organization=org, campaign=campaign, subject=SECRET_MARKER, body_markdown="Hi"
        ).pk


def _enrollment(org) -> int:
    from campaigns.models import Campaign, Enrollment

    with scopes_disabled():
        campaign = Campaign.objects.get(pk=_campaign(org))
        return Enrollment.objects.create(
            organization=org, campaign=campaign, candidate_id=_candidate(org)
        ).pk


def _sending_domain(org) -> int:
    from campaigns.models import SendingDomain

    with scopes_disabled():
        return SendingDomain.objects.create(
            organization=org, domain=f"{SECRET_MARKER.lower()}-{secrets.token_hex(3)}.example"
        ).pk


def _suppression(org) -> int:
    from campaigns.models import Suppression

    with scopes_disabled():
        return Suppression.objects.create(
            organization=org,
            email=f"{SECRET_MARKER.lower()}-{secrets.token_hex(3)}@example.com",
            reason=Suppression.Reason.MANUAL,
        ).pk


# URL keyword argument -> function(organization) returning a value that names an object of
# that organisation.
OBJECT_KWARGS: dict[str, Callable] = {
    "membership_id": _membership,
    "invitation_id": _invitation,
    "candidate_id": _candidate,
    "job_id": _job,
    "attachment_id": _attachment,
    "suggestion_id": _duplicate_suggestion,
    "merge_id": _merge,
    "note_id": _note,
    "field_id": _custom_field,
    "saved_search_id": _saved_search,
    "campaign_id": _campaign,
    "template_id": _email_template,
    "message_id": _campaign_message,
    "step_id": _sequence_step,
    "enrollment_id": _enrollment,
    "topic_id": _topic,
    "role_family_id": _role_family,
    "domain_id": _sending_domain,
    "suppression_id": _suppression,
    "pool_id": _pool,
    "stage_id": _stage,
    "pool_membership_id": _pool_membership,
    "role_id": _hiring_role,
    "follow_up_id": _follow_up,
}

# URLs outside /o/<org_slug>/, by name, with why they are not tenant pages.
PUBLIC_URL_NAMES = {
    "home": "redirects to the user's own organisations",
    "healthz": "operational health, no tenant data",
    "organization_create": "creates a new organisation for the current user",
    "invitation_accept": "addressed by a secret single-use token, not by organisation",
    "campaigns_public:unsubscribe": "candidate-facing, addressed by a signed token (org+candidate)",
    "campaigns_public:resubscribe": "candidate-facing, addressed by a signed token (org+candidate)",
    "campaigns_public:preferences": "candidate-facing, addressed by a signed token (org+candidate)",
    "campaigns_public:open": "open-tracking pixel, addressed by a signed token (org+message)",
    "campaigns_public:click": "click redirect, addressed by a signed token (org+message+link)",
    "campaigns_public:consent_confirm": "double opt-in page, addressed by a signed token "
    "(org+candidate+consent request)",
    "campaigns_public:logo": "the organisation's logo, public by nature (every email shows "
    "it), addressed by an unguessable key that changes with each upload",
    # ESP webhooks: anymail checks basic auth (ANYMAIL_WEBHOOK_SECRET) and the ESP's signature;
    # events are matched to messages by the ESP's message id, not by organisation.
    **{
        f"anymail:{pattern.name}": "ESP webhook (anymail), authenticated by its secret/signature"
        for pattern in anymail_urlpatterns
    },
}


@dataclass
class Route:
    name: str
    kwargs: list[str]
    route: str


def _walk(patterns, prefix="", namespace="", kwargs=()) -> Iterator[tuple]:
    for entry in patterns:
        converters = list(getattr(entry.pattern, "converters", {}).keys())
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry.url_patterns, route, ns, (*kwargs, *converters))
        elif isinstance(entry, URLPattern):
            yield entry, route, namespace, [*kwargs, *converters]


def all_routes() -> list[tuple[URLPattern, Route]]:
    routes = []
    for pattern, route, namespace, kwargs in _walk(get_resolver().url_patterns):
        name = f"{namespace}{pattern.name}" if pattern.name else None
        routes.append((pattern, Route(name=name, kwargs=kwargs, route=route)))
    return routes


def tenant_routes() -> list[Route]:
    return [route for _, route in all_routes() if "org_slug" in route.kwargs]


def _is_third_party(pattern: URLPattern, route: Route) -> bool:
    module = getattr(pattern.callback, "__module__", "")
    return route.route.startswith(("admin/", "accounts/")) or module.startswith(
        ("allauth.", "django.contrib.admin")
    )


def test_isolation_every_url_is_classified():
    unclassified = [
        route.route
        for pattern, route in all_routes()
        if "org_slug" not in route.kwargs
        and not _is_third_party(pattern, route)
        and route.name not in PUBLIC_URL_NAMES
    ]
    assert unclassified == [], "New URLs outside /o/<org_slug>/ must be listed in PUBLIC_URL_NAMES"


def test_isolation_every_url_argument_can_be_filled():
    unknown = sorted(
        {
            kwarg
            for route in tenant_routes()
            for kwarg in route.kwargs
            if kwarg != "org_slug" and kwarg not in OBJECT_KWARGS
        }
    )
    assert unknown == [], f"Add these URL arguments to OBJECT_KWARGS in {__file__}: {unknown}"


@pytest.fixture
def tenants(db):
    org_a = OrganizationFactory(name=f"{SECRET_MARKER} Org", slug="tenant-a")
    org_b = OrganizationFactory(name="Other Org", slug="tenant-b")
    MembershipFactory(organization=org_a, role=Role.ADMIN)
    outsider = UserFactory(email="outsider@tenant-b.example")
    with scopes_disabled():
        Membership.objects.create(organization=org_b, user=outsider, role=Role.ADMIN)
    return org_a, org_b, outsider


def _requests(client, url):
    yield "GET", client.get(url)
    yield "POST", client.post(url, {"name": "x", "email": "x@example.com", "role": "admin"})


@pytest.mark.django_db
def test_isolation_member_of_another_org_gets_404_everywhere(client, tenants):
    org_a, org_b, outsider = tenants
    client.force_login(outsider)
    routes = tenant_routes()
    assert len(routes) >= 10
    failures = []
    for route in routes:
        objects_of_a = {k: OBJECT_KWARGS[k](org_a) for k in route.kwargs if k != "org_slug"}
        for slug in (org_a.slug, org_b.slug):
            if slug == org_b.slug and not objects_of_a:
                continue  # B's own page without object arguments is B's business
            url = reverse(route.name, kwargs={"org_slug": slug, **objects_of_a})
            for method, response in _requests(client, url):
                body = response.content.decode(errors="replace")
                # A POST-only view answers GET with 405 before looking at any object, as a
                # read-only page (require_safe) answers POST: the same for every id, so it
                # reveals nothing; every other answer must be 404.
                expected = {404, 405}
                if response.status_code not in expected or SECRET_MARKER in body:
                    failures.append(f"{method} {url} -> {response.status_code}")
    assert failures == []


@pytest.mark.django_db
def test_isolation_anonymous_is_sent_to_login_everywhere(client, tenants):
    org_a, _, _ = tenants
    failures = []
    for route in tenant_routes():
        kwargs = {k: OBJECT_KWARGS[k](org_a) for k in route.kwargs if k != "org_slug"}
        url = reverse(route.name, kwargs={"org_slug": org_a.slug, **kwargs})
        response = client.get(url)
        if response.status_code != 302 or "/accounts/login/" not in response["Location"]:
            failures.append(f"GET {url} -> {response.status_code}")
    assert failures == []
