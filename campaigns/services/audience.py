"""Who a campaign reaches: its saved searches and talent pools (static pools: their members;
smart pools: their members and everyone their saved search finds now), minus everyone in its
excluded saved searches and pools, minus everyone campaign email must not go to anyway (no
address, do not contact, unsubscribed, suppressed)."""

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


def _pool_ids(pools) -> Q | None:
    from pipelines.models import PoolMembership

    pools = list(pools)
    if not pools:
        return None
    members = PoolMembership.objects.filter(pool__in=pools).order_by().values("candidate_id")
    query = Q(pk__in=members)
    searches = _ids(pool.saved_search for pool in pools if pool.is_smart and pool.saved_search)
    return query if searches is None else query | searches


def _either(first: Q | None, second: Q | None) -> Q | None:
    if first is None or second is None:
        return first if second is None else second
    return first | second


def audience_queryset(*, campaign) -> QuerySet:
    """The candidates a launch would enroll now (an empty audience without sources)."""
    organization = campaign.organization
    included = _either(
        _ids(campaign.saved_searches.all()),
        _pool_ids(campaign.pools.select_related("saved_search__organization")),
    )
    if included is None:
        return Candidate.objects.none()
    audience = Candidate.objects.live().filter(included, organization=organization)
    excluded = _either(
        _ids(campaign.excluded_saved_searches.all()),
        _pool_ids(campaign.excluded_pools.select_related("saved_search__organization")),
    )
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
