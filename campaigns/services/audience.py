"""Who a campaign reaches: its saved searches and talent pools (static pools: their members;
smart pools: their members and everyone their saved search finds now), minus everyone in its
excluded saved searches and pools, minus everyone campaign email must not go to anyway (no
address, do not contact, unsubscribed, suppressed)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from campaigns.models import Campaign, CandidateEmailPreference, Suppression
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


def campaign_pool_names(*, campaigns, candidate_ids) -> dict[tuple[int, int], str]:
    """{(campaign id, candidate id): pool name} — the `pool_name` merge field: the talent pool
    through which each candidate is in each campaign (a sequence's auto-join pool first, then
    the campaign's pools by name; a smart pool counts its current members). One query for a
    dispatcher chunk whose campaigns have no pool, three at most otherwise."""
    from pipelines.models import Pool, PoolMembership

    ordered: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    rows = (
        Campaign.pools.through.objects.filter(campaign_id__in=[c.pk for c in campaigns])
        .order_by("pool__name", "pool_id")
        .values_list("campaign_id", "pool_id", "pool__name")
    )
    for campaign_id, pool_id, name in rows:
        ordered.setdefault(campaign_id, []).append(pool_id)
        names[pool_id] = name
    auto_join = {c.pk: c.auto_join_pool_id for c in campaigns if c.auto_join_pool_id}
    if auto_join:
        names.update(Pool.objects.filter(pk__in=auto_join.values()).values_list("pk", "name"))
        for campaign_id, pool_id in auto_join.items():
            ordered[campaign_id] = [pool_id, *ordered.get(campaign_id, [])]
    if not names or not candidate_ids:
        return {}
    member_of: dict[int, set[int]] = {}
    for candidate_id, pool_id in PoolMembership.objects.filter(
        pool_id__in=list(names), candidate_id__in=list(candidate_ids)
    ).values_list("candidate_id", "pool_id"):
        member_of.setdefault(candidate_id, set()).add(pool_id)
    result = {}
    for campaign_id, pool_ids in ordered.items():
        for candidate_id, pools in member_of.items():
            first = next((pool_id for pool_id in pool_ids if pool_id in pools), None)
            if first is not None:
                result[(campaign_id, candidate_id)] = names[first]
    return result
