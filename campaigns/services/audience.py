"""Who a campaign reaches: its saved searches and talent pools (static pools: their members;
smart pools: their members and everyone their saved search finds now), minus everyone in its
excluded saved searches and pools, minus everyone campaign email must not go to anyway (no
address, do not contact, hired, unsubscribed, suppressed), and — when the campaign targets
interests — only the candidates whose preference-centre interests fit."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.fields.array import ArrayOverlap
from django.db.models import CharField, Exists, F, Func, OuterRef, Q, QuerySet, Value

from campaigns.models import Campaign, CandidateEmailPreference, Suppression
from candidates.models import Candidate
from candidates.selectors import saved_search_problem, saved_search_queryset

REMOTE = "remote"  # a targeted location that also finds candidates open to remote work

# Statuses that campaign email never reaches: "Do not contact", and "Hired" (an employee now,
# no longer someone to tell about opportunities). Launch audiences, sequence joins, the stop
# check when a step falls due and the send path all leave them out; a recruiter's own email
# and transactional email (a double opt-in confirmation) are not campaign email.
NO_CAMPAIGN_EMAIL_STATUSES = (Candidate.Status.DO_NOT_CONTACT, Candidate.Status.HIRED)


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


LOWER_ARRAY = "lower(%(expressions)s::text)::varchar(100)[]"


def _lower_array(expression) -> Func:
    """An array with every element lower-cased, through its text form (`{London,"New York"}`
    → `{london,"new york"}`), in SQL on both sides of a comparison so that the database's
    idea of lower case is the only one."""
    return Func(
        expression, template=LOWER_ARRAY, output_field=ArrayField(CharField(max_length=100))
    )


def interest_condition(*, campaign) -> Q | None:
    """Who fits the campaign's interest targeting (None: it targets no interest).

    Each targeted dimension must fit: role families — the candidate ticked one of them
    (array overlap, `&&`); locations — one of the places they named, or the city they live
    in, is one of them, whatever the case ("remote" also finds those open to remote work).
    With `interest_include_unstated`, a candidate who has stated nothing for a dimension (no
    preferences, or none of that kind) fits it too. Each part is one uncorrelated subquery
    over the organisation's preferences (a hashed subplan), not a lookup per candidate."""
    families = list(campaign.interest_role_families or [])
    locations = list(dict.fromkeys(place.lower() for place in campaign.interest_locations or []))
    if not families and not locations:
        return None
    preferences = CandidateEmailPreference.objects.filter(
        organization_id=campaign.organization_id
    ).order_by()
    unstated_fits = campaign.interest_include_unstated
    condition = Q()
    if families:
        if unstated_fits:  # everyone but those who ticked families, none of these
            others = preferences.exclude(interested_role_families=[]).exclude(
                interested_role_families__overlap=families
            )
            condition &= ~Q(pk__in=others.values("candidate_id"))
        else:
            fitting = preferences.filter(interested_role_families__overlap=families)
            condition &= Q(pk__in=fitting.values("candidate_id"))
    if locations:
        wanted = _lower_array(Value(locations, output_field=ArrayField(CharField(max_length=60))))
        named = Q(places__overlap=wanted)
        if REMOTE in locations:
            named |= Q(open_to_remote=True)
        places = preferences.alias(places=_lower_array(F("interested_locations")))
        if unstated_fits:  # everyone but those who named places, none of these
            others = places.exclude(interested_locations=[]).exclude(named)
            fits = ~Q(pk__in=others.values("candidate_id"))
        else:
            fits = Q(pk__in=places.filter(named).values("candidate_id"))
        city = Func(F("city"), function="ARRAY", template="ARRAY[%(expressions)s]")
        condition &= fits | Q(ArrayOverlap(_lower_array(city), wanted))
    return condition


def audience_saved_searches(*, campaign, excluded: bool = False) -> list[tuple]:
    """(saved search, what it is in words) for the searches that decide who the campaign
    reaches (or, `excluded`, who it must not): its own and the rules of its smart pools."""
    from pipelines.models import Pool

    searches = campaign.excluded_saved_searches if excluded else campaign.saved_searches
    pools = campaign.excluded_pools if excluded else campaign.pools
    found = [
        (saved_search, f"The saved search “{saved_search.name}”")
        for saved_search in searches.select_related("organization")
    ]
    for pool in pools.select_related("saved_search__organization"):
        if pool.is_smart and pool.saved_search:
            # A colleague's "Only me" pool is not named (pipelines.selectors.PRIVATE_POOL_NAME).
            named = pool.visibility == Pool.Visibility.ORGANIZATION
            what = f"The rule of the smart pool “{pool.name}”" if named else "A private pool's rule"
            found.append((pool.saved_search, what))
    return found


def audience_problems(*, campaign) -> list[str]:
    """Saved searches of the audience whose filters no longer hold (an owner who left, a
    removed choice or field), in words: an included one finds nobody, an excluded one would
    leave in people it should keep out."""
    problems = []
    for excluded in (False, True):
        for saved_search, what in audience_saved_searches(campaign=campaign, excluded=excluded):
            problem = saved_search_problem(saved_search=saved_search)
            if problem:
                role = "keeps people out of" if excluded else "chooses"
                problems.append(
                    f"{what}, which {role} the audience, no longer works ({problem}): "
                    "fix it on the candidate list first."
                )
    return problems


def audience_queryset(*, campaign) -> QuerySet:
    """The candidates a launch would enroll now (an empty audience without sources). Nobody
    when an excluded saved search no longer works: it would keep no one out."""
    organization = campaign.organization
    if any(
        saved_search_problem(saved_search=saved_search)
        for saved_search, _what in audience_saved_searches(campaign=campaign, excluded=True)
    ):
        return Candidate.objects.none()
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
    interests = interest_condition(campaign=campaign)
    if interests is not None:
        audience = audience.filter(interests)
    return (
        audience.exclude(email="")
        .exclude(status__in=NO_CAMPAIGN_EMAIL_STATUSES)
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
