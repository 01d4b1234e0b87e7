"""Who a campaign reaches: its saved searches, minus its exclusions, minus everyone campaign
email must not go to anyway (no address, do not contact, unsubscribed, suppressed).

EXTENSION POINT (pipelines app): when Campaign gets `pools` / `excluded_pools`, union
`Pool` members into `included` and into `excluded` below; nothing else changes."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from campaigns.models import CandidateEmailPreference, Suppression
from candidates.models import Candidate
from candidates.selectors import saved_search_queryset


def _ids(saved_searches) -> QuerySet | None:
    query = None
    for saved_search in saved_searches:
        ids = saved_search_queryset(saved_search=saved_search).order_by().values("pk")
        query = Q(pk__in=ids) if query is None else query | Q(pk__in=ids)
    return query


def audience_queryset(*, campaign) -> QuerySet:
    """The candidates a launch would enroll now (an empty audience without saved searches)."""
    organization = campaign.organization
    included = _ids(campaign.saved_searches.all())
    if included is None:
        return Candidate.objects.none()
    audience = Candidate.objects.live().filter(included, organization=organization)
    excluded = _ids(campaign.excluded_saved_searches.all())
    if excluded is not None:
        audience = audience.exclude(excluded)
    return (
        audience.exclude(email="")
        .exclude(status=Candidate.Status.DO_NOT_CONTACT)
        .exclude(
            Exists(
                CandidateEmailPreference.objects.filter(
                    candidate=OuterRef("pk"), unsubscribed_at__isnull=False
                )
            )
        )
        .exclude(
            Exists(Suppression.objects.filter(organization=organization, email=OuterRef("email")))
        )
    )


def audience_count(*, campaign) -> int:
    return audience_queryset(campaign=campaign).count()
