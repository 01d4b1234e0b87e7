"""Tenant-scoped reads of pools, stages, boards, roles and follow-ups. Views load objects
through these and get a 404 for anything that is not theirs to see (the same answer for
missing, foreign and private)."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import BigIntegerField, Count, OuterRef, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.db.models.lookups import In
from django.shortcuts import get_object_or_404
from django.utils import timezone

from candidates.models import Activity
from candidates.search import count_capped, count_display
from crm.ids import id_from
from pipelines.models import (
    FollowUp,
    HiringRole,
    Pool,
    PoolMembership,
    RolePool,
    Stage,
)

BOARD_COLUMN_SIZE = 20
GROWTH_DAYS = 30


# --- stages ---


def stages_default(*, organization, include_archived: bool = False) -> list[Stage]:
    """The organisation's default stage set, created on first use for organisations that
    existed before pipelines did."""
    stages = Stage.objects.filter(organization=organization, pool__isnull=True)
    # One query (archived ones included) rather than "any?" and then the list: a smart pool
    # asks for its entry stage on every candidate who enters it.
    found = list(stages.order_by("position", "id"))
    if not found:
        from pipelines.services import stages_create_defaults

        stages_create_defaults(organization=organization)
        found = list(stages.order_by("position", "id"))
    return found if include_archived else [stage for stage in found if not stage.archived]


def pool_stages(*, pool: Pool, include_archived: bool = False) -> list[Stage]:
    """The columns of a pool's board: its own stages or the organisation's defaults."""
    if not pool.custom_stages:
        return stages_default(organization=pool.organization_id, include_archived=include_archived)
    stages = Stage.objects.filter(organization_id=pool.organization_id, pool=pool)
    if not include_archived:
        stages = stages.filter(archived=False)
    return list(stages.order_by("position", "id"))


def stage_get(*, organization, stage_id: int, pool: Pool | None = None) -> Stage:
    return get_object_or_404(Stage, organization=organization, pool=pool, pk=stage_id)


# --- pools ---


def _seen_by(user) -> Q:
    return Q(visibility=Pool.Visibility.ORGANIZATION) | Q(owner=user)


def pools_visible(*, organization, user, archived: bool | None = False) -> QuerySet[Pool]:
    """Pools the user may see: the organisation's shared pools and their own private ones.
    Archived pools only with `archived=True` (only them) or `archived=None` (all)."""
    pools = Pool.objects.filter(organization=organization).filter(_seen_by(user))
    if archived is not None:
        pools = pools.filter(archived_at__isnull=not archived)
    return pools


def pools_hidden(*, organization, user) -> QuerySet[Pool]:
    """The organisation's pools the user may not see (other members' "Only me" pools,
    archived ones too): their names and stages are shown to the user nowhere."""
    return Pool.objects.filter(organization=organization).exclude(_seen_by(user))


def pool_visible_to(*, pool: Pool, user) -> bool:
    """`pools_visible` for one pool already read (no query)."""
    return pool.visibility == Pool.Visibility.ORGANIZATION or (
        pool.owner_id is not None and pool.owner_id == user.pk
    )


PRIVATE_POOL_NAME = "A private pool"


def pools_named_for(*, pools, user) -> list[Pool]:
    """The pools, each with `is_hidden` and `shown_name`: its name, or "A private pool" for
    one the user may not see (a colleague's "Only me" pool a campaign uses). No query beyond
    the pools'."""
    pools = list(pools)
    for pool in pools:
        pool.is_hidden = not pool_visible_to(pool=pool, user=user)
        pool.shown_name = PRIVATE_POOL_NAME if pool.is_hidden else pool.name
    return pools


# Timeline entries about a pool carry its id in `data["pool_id"]`; a private pool deleted for
# good leaves `data["private_pool_deleted"]` on them (pool_delete), as it is hidden from all.
def activity_names_hidden_pool(*, organization_id: int, user) -> Q:
    """A condition on Activity rows: the entry names a pool the user may not see."""
    pool_id = Cast(KT("data__pool_id"), BigIntegerField())
    hidden_pools = pools_hidden(organization=organization_id, user=user).order_by().values("pk")
    hidden = In(pool_id, hidden_pools)
    return Q(hidden) | Q(data__private_pool_deleted=True)


# What a pool's timeline entries say to those who may not see the pool (its name and its
# stages left out).
PRIVATE_POOL_SUMMARIES = {
    Activity.Kind.POOL_ADDED: "Added to a private pool",
    Activity.Kind.POOL_REMOVED: "Removed from a private pool",
    Activity.Kind.STAGE_CHANGED: "Moved to another stage in a private pool",
}


def activity_pool_condition(*, organization_id: int, user) -> Q:
    """The pipelines entries (added, removed, moved) about a pool the user may not see: the
    condition of pipelines' timeline redaction."""
    return Q(kind__in=list(PRIVATE_POOL_SUMMARIES)) & activity_names_hidden_pool(
        organization_id=organization_id, user=user
    )


def activity_pool_summary(activity) -> str:
    return PRIVATE_POOL_SUMMARIES.get(activity.kind, "A change in a private pool")


def pool_get(*, organization, user, pool_id: int) -> Pool:
    """A visible pool, archived or not (an archived pool's board is read-only)."""
    return get_object_or_404(
        pools_visible(organization=organization, user=user, archived=None).select_related(
            "owner", "saved_search"
        ),
        pk=pool_id,
    )


def pool_can_manage(*, pool: Pool, membership) -> bool:
    """Who may change a pool's settings, stages or delete it: its owner and admins."""
    return membership is not None and (
        membership.is_admin or (membership.can_write and pool.owner_id == membership.user_id)
    )


@dataclass
class PoolRow:
    pool: Pool
    size: int = 0
    recent: int = 0
    breakdown: list[tuple[Stage, int]] = field(default_factory=list)

    @property
    def segments(self) -> list[dict]:
        """The stage bar: each non-empty stage's share of the pool as x/width in 0..100."""
        total = sum(count for _, count in self.breakdown) or 1
        x, segments = 0.0, []
        for index, (stage, count) in enumerate(self.breakdown):
            if not count:
                continue
            width = count * 100 / total
            segments.append(
                {
                    "stage": stage,
                    "count": count,
                    "x": f"{x:.3f}",
                    "width": f"{width:.3f}",
                    "index": index % 8,
                }
            )
            x += width
        return segments


def pool_list_rows(*, organization, user, archived: bool = False) -> list[PoolRow]:
    """Every visible pool (or every archived one) with its size, how many joined in the last
    30 days and how many are in each stage. Three queries however many pools: pools, stages,
    and one GROUP BY over the memberships' board index."""
    pools = list(
        pools_visible(organization=organization, user=user, archived=archived).select_related(
            "owner"
        )
    )
    if not pools:
        return []
    stages = {
        stage.pk: stage
        for stage in Stage.objects.filter(organization=organization, archived=False).filter(
            Q(pool__isnull=True) | Q(pool__in=pools)
        )
    }
    cutoff = timezone.now() - timedelta(days=GROWTH_DAYS)
    counts = (
        PoolMembership.objects.filter(organization=organization, pool__in=pools)
        .values("pool_id", "stage_id")
        .annotate(n=Count("id"), recent=Count("id", filter=Q(added_at__gte=cutoff)))
        .order_by()
    )
    rows = {pool.pk: PoolRow(pool=pool) for pool in pools}
    per_stage: dict[int, dict[int, int]] = {pool.pk: {} for pool in pools}
    for count in counts:
        row = rows[count["pool_id"]]
        row.size += count["n"]
        row.recent += count["recent"]
        per_stage[count["pool_id"]][count["stage_id"]] = count["n"]
    if not any(stage.pool_id is None for stage in stages.values()):
        for stage in stages_default(organization=organization):
            stages[stage.pk] = stage
    ordered = sorted(stages.values(), key=lambda stage: (stage.position, stage.pk))
    for pool in pools:
        own = [
            stage
            for stage in ordered
            if (stage.pool_id == pool.pk if pool.custom_stages else stage.pool_id is None)
        ]
        rows[pool.pk].breakdown = [(stage, per_stage[pool.pk].get(stage.pk, 0)) for stage in own]
    return list(rows.values())


# --- the board ---


@dataclass
class BoardColumn:
    stage: Stage
    count: int
    cards: list[PoolMembership]
    next_cursor: str | None


def _memberships(*, pool: Pool, q: str = "", owner: str = "") -> QuerySet[PoolMembership]:
    memberships = PoolMembership.objects.filter(organization_id=pool.organization_id, pool=pool)
    q = " ".join(q.split())
    if q:
        memberships = memberships.filter(
            Q(candidate__search_name__icontains=q)
            | Q(candidate__email__icontains=q)
            | Q(candidate__current_title__icontains=q)
            | Q(candidate__current_company__icontains=q)
        )
    if owner == "unassigned":
        memberships = memberships.filter(candidate__owner__isnull=True)
    elif (owner_id := id_from(owner)) is not None:
        memberships = memberships.filter(candidate__owner_id=owner_id)
    return memberships


def _card_queryset(organization_id: int) -> QuerySet[PoolMembership]:
    return PoolMembership.objects.filter(organization_id=organization_id).select_related(
        "candidate", "candidate__owner"
    )


def _cursor(card: PoolMembership) -> str:
    return f"{card.entered_stage_at.isoformat()}_{card.pk}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """The board's "show more" cursor, or None when `value` is not one (missing, malformed or
    naming an impossible moment such as 30 February): treated as no cursor at all."""
    from django.utils.dateparse import parse_datetime

    stamp, _, pk = (value or "").rpartition("_")
    try:
        moment = parse_datetime(stamp) if stamp else None
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        return None
    card_id = id_from(pk)
    if moment is None or card_id is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    try:
        moment = moment.astimezone(UTC)  # PostgreSQL refuses offsets past ±15:59
    except OverflowError:  # before the start of time in UTC: no card's
        return None
    return moment, card_id


def pool_board(
    *, pool: Pool, q: str = "", owner: str = "", size: int = BOARD_COLUMN_SIZE
) -> list[BoardColumn]:
    """The board's columns with their counts and first cards, in a fixed number of queries
    whatever the pool's size: stages with the ids of each column's first cards (one indexed
    LIMIT per column), the counts (one GROUP BY), the cards (one query)."""
    memberships = _memberships(pool=pool, q=q, owner=owner)
    stages = pool_stages(pool=pool)
    stage_ids = [stage.pk for stage in stages]
    first_ids = dict(
        Stage.objects.filter(pk__in=stage_ids).values_list(
            "pk",
            ArraySubquery(
                memberships.filter(stage=OuterRef("pk"))
                .order_by("-entered_stage_at", "-id")
                .values("id")[: size + 1]
            ),
        )
    )
    counts = dict(
        memberships.filter(stage_id__in=stage_ids)
        .values("stage_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("stage_id", "n")
    )
    wanted = [pk for ids in first_ids.values() for pk in ids]
    cards = _card_queryset(pool.organization_id).in_bulk(wanted)
    columns = []
    for stage in stages:
        ids = first_ids.get(stage.pk) or []
        column_cards = [cards[pk] for pk in ids[:size] if pk in cards]
        more = len(ids) > size and column_cards
        columns.append(
            BoardColumn(
                stage=stage,
                count=counts.get(stage.pk, 0),
                cards=column_cards,
                next_cursor=_cursor(column_cards[-1]) if more else None,
            )
        )
    return columns


def board_column_page(
    *,
    pool: Pool,
    stage: Stage,
    after: tuple[datetime, int],
    q: str = "",
    owner: str = "",
    size: int = BOARD_COLUMN_SIZE,
) -> tuple[list[PoolMembership], str | None]:
    """The next cards of one column after the keyset cursor `after`."""
    moment, pk = after
    ids = list(
        _memberships(pool=pool, q=q, owner=owner)
        .filter(stage=stage)
        .filter(Q(entered_stage_at__lt=moment) | Q(entered_stage_at=moment, id__lt=pk))
        .order_by("-entered_stage_at", "-id")
        .values_list("id", flat=True)[: size + 1]
    )
    cards_by_id = _card_queryset(pool.organization_id).in_bulk(ids[:size])
    cards = [cards_by_id[pk] for pk in ids[:size] if pk in cards_by_id]
    return cards, (_cursor(cards[-1]) if len(ids) > size and cards else None)


def pool_membership_get(*, pool: Pool, pool_membership_id: int) -> PoolMembership:
    membership = get_object_or_404(
        PoolMembership.objects.select_related("candidate", "candidate__owner", "stage"),
        organization_id=pool.organization_id,
        pool=pool,
        pk=pool_membership_id,
    )
    membership.pool = pool
    return membership


def pool_stage_counts(*, pool: Pool, q: str = "", owner: str = "") -> dict[int, int]:
    """Members per stage (one GROUP BY over the board index); with the board's filters, those
    the filtered board counts."""
    return dict(
        _memberships(pool=pool, q=q, owner=owner)
        .values("stage_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("stage_id", "n")
    )


def stage_member_counts(*, stages: list[Stage]) -> dict[int, int]:
    """Current members per stage, across every pool that uses these stages."""
    if not stages:
        return {}
    return dict(
        PoolMembership.objects.filter(
            organization_id=stages[0].organization_id, stage__in=[stage.pk for stage in stages]
        )
        .values("stage_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("stage_id", "n")
    )


def pool_size(*, pool: Pool) -> int:
    return PoolMembership.objects.filter(organization_id=pool.organization_id, pool=pool).count()


@dataclass
class SmartPoolImpact:
    pool: Pool
    size: int
    matching: int
    joining: int
    leaving: int
    # The counts stop at cap + 1 ("10,000+"); None: exact.
    cap: int | None = None

    def _text(self, count: int) -> str:
        return count_display(count, self.cap) if self.cap else f"{count:,}"

    @property
    def joining_text(self) -> str:
        return self._text(self.joining)

    @property
    def leaving_text(self) -> str:
        return self._text(self.leaving)


def smart_pool_impacts(
    *, pools, matching: QuerySet, cap: int | None = None
) -> list[SmartPoolImpact]:
    """What giving these smart pools the rule `matching` (the candidates it would find) would
    do to each: who would join (matching, not yet in it) and who would leave (in it because
    they matched, and no longer would). Counted by the database, a few queries per pool; with
    `cap`, each count stops there (a rule of a common word finds most of a million candidates:
    counting who would join a 300,000-member pool exactly took seconds)."""
    pools = list(pools)
    if not pools:
        return []

    def count(queryset: QuerySet) -> int:
        return count_capped(queryset, cap) if cap else queryset.order_by().count()

    found = matching.order_by().values("pk")
    matching_count = count(matching)
    impacts = []
    for pool in pools:
        members = PoolMembership.objects.filter(organization_id=pool.organization_id, pool=pool)
        impacts.append(
            SmartPoolImpact(
                pool=pool,
                size=members.count(),
                matching=matching_count,
                joining=count(matching.exclude(pk__in=members.values("candidate_id"))),
                leaving=count(
                    members.filter(source=PoolMembership.Source.SMART).exclude(
                        candidate_id__in=found
                    )
                ),
                cap=cap,
            )
        )
    return impacts


# --- a candidate's pools (profile panel) ---


def candidate_pools_panel(*, candidate, user) -> dict:
    """The candidate's memberships in pools the user can see, and the pools they could be
    added to. Two queries."""
    visible = pools_visible(organization=candidate.organization_id, user=user)
    memberships = list(
        PoolMembership.objects.filter(
            organization_id=candidate.organization_id,
            candidate=candidate,
            # Archived pools too: their stage is still part of the candidate's story.
            pool__in=pools_visible(
                organization=candidate.organization_id, user=user, archived=None
            ),
        )
        .select_related("pool", "stage")
        .only("id", "pool__name", "pool__archived_at", "stage__name")
        .order_by("pool__name", "pool_id")
    )
    member_of = {membership.pool_id for membership in memberships}
    addable = [
        pool
        for pool in visible.filter(kind=Pool.Kind.STATIC).only("id", "name")
        if pool.pk not in member_of
    ]
    return {"memberships": memberships, "addable_pools": addable}


# --- roles ---


@dataclass
class RoleRow:
    role: HiringRole
    pools: list[Pool] = field(default_factory=list)
    by_stage: list[tuple[str, str, int]] = field(default_factory=list)  # name, outcome, n
    active: int = 0
    hired: int = 0

    @property
    def wanted(self) -> int:
        from pipelines.services import READINESS_RATIO

        return self.role.headcount * READINESS_RATIO

    @property
    def days_left(self) -> int | None:
        if self.role.target_date is None:
            return None
        return (self.role.target_date - timezone.localdate()).days

    @property
    def is_thin(self) -> bool:
        """The target date is near and the pipeline cannot fill the role."""
        from pipelines.services import READINESS_WARNING_DAYS

        live = self.role.status in {HiringRole.Status.PLANNED, HiringRole.Status.OPEN}
        near = self.days_left is not None and self.days_left <= READINESS_WARNING_DAYS
        return live and near and self.active < self.wanted


def role_list_rows(*, organization, user, status: str = "") -> list[RoleRow]:
    """Roles with their readiness: candidates in their (visible) pools per stage. Four
    queries: roles, their pools, one GROUP BY of the memberships per stage and one per
    outcome (a person in two of a role's pools counts once as active or hired)."""
    roles = HiringRole.objects.filter(organization=organization).order_by(
        "target_date", "title", "id"
    )
    if status:
        roles = roles.filter(status=status)
    roles = list(roles)
    if not roles:
        return []
    visible = pools_visible(organization=organization, user=user)
    links = list(
        RolePool.objects.filter(organization=organization, role__in=roles, pool__in=visible)
        .select_related("pool")
        .order_by("pool__name")
    )
    rows = {role.pk: RoleRow(role=role) for role in roles}
    for link in links:
        rows[link.role_id].pools.append(link.pool)
    counts = (
        RolePool.objects.filter(organization=organization, role__in=roles, pool__in=visible)
        .values(
            "role_id",
            "pool__memberships__stage__name",
            "pool__memberships__stage__outcome",
            "pool__memberships__stage__position",
        )
        .annotate(n=Count("pool__memberships__candidate_id", distinct=True))
        .filter(n__gt=0)
        .order_by("role_id", "pool__memberships__stage__position")
    )
    for count in counts:
        row = rows[count["role_id"]]
        name = count["pool__memberships__stage__name"]
        outcome = count["pool__memberships__stage__outcome"]
        # Pools with their own stages may repeat a name: one entry per name.
        for index, (existing, kind, n) in enumerate(row.by_stage):
            if existing == name:
                row.by_stage[index] = (existing, kind, n + count["n"])
                break
        else:
            row.by_stage.append((name, outcome, count["n"]))
    totals = (
        RolePool.objects.filter(
            organization=organization,
            role__in=roles,
            pool__in=visible,
            pool__memberships__stage__outcome__in=[Stage.Outcome.OPEN, Stage.Outcome.WON],
        )
        .values("role_id", "pool__memberships__stage__outcome")
        .annotate(n=Count("pool__memberships__candidate_id", distinct=True))
        .order_by()
    )
    for total in totals:
        row = rows[total["role_id"]]
        if total["pool__memberships__stage__outcome"] == Stage.Outcome.OPEN:
            row.active = total["n"]
        else:
            row.hired = total["n"]
    return list(rows.values())


def role_get(*, organization, role_id: int) -> HiringRole:
    return get_object_or_404(HiringRole, organization=organization, pk=role_id)


# --- follow-ups ---


def follow_up_get(*, organization, follow_up_id: int) -> FollowUp:
    return get_object_or_404(
        FollowUp.objects.select_related("candidate", "owner"),
        organization=organization,
        pk=follow_up_id,
    )


def follow_ups_open(*, organization, owner=None, unassigned: bool = False) -> QuerySet[FollowUp]:
    follow_ups = FollowUp.objects.filter(
        organization=organization, completed_at__isnull=True, candidate__merged_into__isnull=True
    ).select_related("candidate", "owner")
    if unassigned:
        follow_ups = follow_ups.filter(owner__isnull=True)
    elif owner is not None:
        follow_ups = follow_ups.filter(owner=owner)
    return follow_ups.order_by("due_on", "id")


def follow_ups_grouped(*, follow_ups: QuerySet[FollowUp], today: date) -> dict[str, list]:
    """Overdue, today and upcoming, in one query."""
    groups: dict[str, list] = {"overdue": [], "today": [], "upcoming": []}
    for follow_up in follow_ups:
        if follow_up.due_on < today:
            groups["overdue"].append(follow_up)
        elif follow_up.due_on == today:
            groups["today"].append(follow_up)
        else:
            groups["upcoming"].append(follow_up)
    return groups


def candidate_follow_ups(*, candidate) -> list[FollowUp]:
    return list(
        FollowUp.objects.filter(
            organization_id=candidate.organization_id,
            candidate=candidate,
            completed_at__isnull=True,
        )
        .select_related("owner")
        .order_by("due_on", "id")
    )
