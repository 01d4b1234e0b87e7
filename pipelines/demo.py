"""Demo talent pools, a smart pool, roles and follow-ups (registered in crm seed_demo's
DEMO_SEEDERS, after the demo candidates). Deterministic: a fixed random seed."""

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from candidates.models import Activity, Candidate, SavedSearch
from crm.models import Role
from pipelines import selectors, services
from pipelines.models import HiringRole, Pool, PoolMembership, StageChange

SEED = 20241105

STATIC_POOLS = [
    # name, description, colour, icon, how many, skills or titles to look for, owner role
    (
        "Backend engineers",
        "Python, Go and Java engineers we would hire for the platform team next year.",
        Pool.Color.BLUE,
        Pool.Icon.CODE,
        45,
        ("engineer", "developer"),
        Role.RECRUITER,
    ),
    (
        "Design leadership bench",
        "Senior product designers and design managers to keep warm for next year's design lead.",
        Pool.Color.PURPLE,
        Pool.Icon.PALETTE,
        18,
        ("design",),
        Role.ADMIN,
    ),
    (
        "Silver medallists",
        "Finalists we did not hire last time, who impressed the panel.",
        Pool.Color.AMBER,
        Pool.Icon.STAR,
        24,
        (),
        Role.RECRUITER,
    ),
]


def _pick(candidates, words, count, rng):
    matching = [c for c in candidates if any(w in (c.current_title or "").lower() for w in words)]
    rest = [c for c in candidates if c not in matching]
    rng.shuffle(rest)
    chosen = (matching + rest)[:count] if words else rng.sample(candidates, count)
    return chosen[:count]


def _spread_over_stages(*, pool, actor, rng) -> None:
    """Move the pool's cards along the pipeline as if recruiters had worked it for months."""
    stages = selectors.pool_stages(pool=pool)
    weights = [30, 22, 16, 12, 8, 4, 8][: len(stages)]
    memberships = list(
        PoolMembership.objects.filter(organization_id=pool.organization_id, pool=pool)
    )
    for membership in memberships:
        target = rng.choices(range(len(stages)), weights=weights)[0]
        for stage in stages[1 : target + 1]:
            services.membership_move(membership=membership, to_stage=stage, actor=actor)
    # Spread the dates so the board shows realistic times in stage and 30-day growth, and the
    # history (stage changes and their timeline entries) happened between joining and now.
    now = timezone.now()
    for membership in memberships:
        added = now - timedelta(days=rng.randint(3, 120), hours=rng.randint(0, 23))
        entered = added + (now - added) * rng.uniform(0.2, 0.95)
        PoolMembership.objects.filter(pk=membership.pk).update(
            added_at=added, entered_stage_at=entered
        )
        _backdate_history(pool=pool, membership=membership, added=added, entered=entered)


def _backdate_history(*, pool, membership, added, entered) -> None:
    """Date a card's history as if it had been worked on since it joined: the entry at
    `added`, each move evenly until the last one at `entered`."""
    Activity.objects.filter(
        organization_id=pool.organization_id,
        candidate_id=membership.candidate_id,
        kind=Activity.Kind.POOL_ADDED,
        data__pool_id=pool.pk,
    ).update(occurred_at=added)
    changes = list(
        StageChange.objects.filter(organization_id=pool.organization_id, membership=membership)
        .order_by("changed_at", "pk")
        .values_list("pk", flat=True)
    )
    moves = list(
        Activity.objects.filter(
            organization_id=pool.organization_id,
            candidate_id=membership.candidate_id,
            kind=Activity.Kind.STAGE_CHANGED,
            data__pool_id=pool.pk,
        )
        .order_by("occurred_at", "pk")
        .values_list("pk", flat=True)
    )
    for step, (change_id, activity_id) in enumerate(zip(changes, moves, strict=False), start=1):
        moment = added + (entered - added) * step / len(changes)
        StageChange.objects.filter(pk=change_id).update(changed_at=moment)
        Activity.objects.filter(pk=activity_id).update(occurred_at=moment)


@transaction.atomic
def seed_demo_data(*, organization, users, stdout) -> None:
    rng = random.Random(SEED)
    services.stages_create_defaults(organization=organization)
    candidates = list(
        Candidate.objects.filter(organization=organization, merged_into__isnull=True).order_by("pk")
    )
    recruiter, admin = users.get(Role.RECRUITER), users.get(Role.ADMIN)
    pools = {}
    for name, description, color, icon, count, words, owner_role in STATIC_POOLS:
        owner = users.get(owner_role)
        pool = services.pool_create(
            organization=organization,
            owner=owner,
            name=name,
            description=description,
            color=color,
            icon=icon,
        )
        pools[name] = pool
        chosen = _pick(candidates, words, min(count, len(candidates)), rng)
        services.pool_add_candidates(pool=pool, candidate_ids=[c.pk for c in chosen], actor=owner)
        _spread_over_stages(pool=pool, actor=owner, rng=rng)

    private = services.pool_create(
        organization=organization,
        owner=recruiter,
        name="My shortlist",
        description="People I want to call personally this quarter.",
        visibility=Pool.Visibility.OWNER,
        color=Pool.Color.TEAL,
        icon=Pool.Icon.GEM,
    )
    services.pool_add_candidates(
        pool=private,
        candidate_ids=[c.pk for c in rng.sample(candidates, min(8, len(candidates)))],
        actor=recruiter,
    )

    # A smart pool: everyone the recruiter's saved search finds.
    saved_search, _ = SavedSearch.objects.get_or_create(
        organization=organization,
        owner=recruiter,
        name="Senior candidates",
        defaults={"query": {"seniority": ["senior"]}},
    )
    smart = Pool.objects.create(
        organization=organization,
        owner=recruiter,
        name="Senior talent (smart)",
        description="Everyone senior in the database, kept up to date automatically.",
        kind=Pool.Kind.SMART,
        saved_search=saved_search,
        color=Pool.Color.GREEN,
        icon=Pool.Icon.ROCKET,
    )
    services.smart_pool_refresh(pool=smart)

    today = timezone.localdate()
    services.role_save(
        organization=organization,
        pools=[pools["Backend engineers"], smart],
        actor=admin,
        title="Staff Backend Engineer",
        team="Platform",
        location="London or remote (UK)",
        target_date=today + timedelta(days=75),
        headcount=2,
        status=HiringRole.Status.OPEN,
    )
    services.role_save(
        organization=organization,
        pools=[pools["Design leadership bench"]],
        actor=admin,
        title="Head of Product Design",
        team="Design",
        location="London",
        target_date=today + timedelta(days=30),
        headcount=1,
        status=HiringRole.Status.PLANNED,
    )
    # A role whose date is close and whose pool is thin: the roles page warns about it.
    data_people = _pick(candidates, ("data",), min(4, len(candidates)), rng)
    data_pool = services.pool_create(
        organization=organization,
        owner=recruiter,
        name="Data engineers",
        description="Data and analytics engineers for the new data platform team.",
        color=Pool.Color.TEAL,
        icon=Pool.Icon.LIGHTNING,
    )
    services.pool_add_candidates(
        pool=data_pool, candidate_ids=[c.pk for c in data_people], actor=recruiter
    )
    _spread_over_stages(pool=data_pool, actor=recruiter, rng=rng)
    services.role_save(
        organization=organization,
        pools=[data_pool],
        actor=admin,
        title="Data Engineers (new platform team)",
        team="Data",
        location="Berlin or remote (EU)",
        target_date=today + timedelta(days=24),
        headcount=3,
        status=HiringRole.Status.OPEN,
    )
    services.role_save(
        organization=organization,
        pools=[pools["Silver medallists"]],
        actor=admin,
        title="Customer Success Managers",
        team="Customer",
        location="Manchester",
        target_date=today + timedelta(days=20),
        headcount=4,
        status=HiringRole.Status.PLANNED,
    )

    notes = [
        "Call about the platform team opening",
        "Check in after their parental leave",
        "Send the engineering blog post they asked about",
        "Ask for referrals from their old team",
        "Catch up after their promotion",
        "Invite to the March meetup",
        "Their notice period ends — reconnect",
        "",
    ]
    offsets = [-9, -3, 0, 0, 2, 6, 14, 30, 45, 90]
    for index, offset in enumerate(offsets):
        candidate = candidates[(index * 7) % len(candidates)] if candidates else None
        if candidate is None:
            break
        services.follow_up_create(
            candidate=candidate,
            due_on=today + timedelta(days=offset),
            note=notes[index % len(notes)],
            owner=recruiter if index % 4 else admin,
            actor=recruiter,
        )
    stdout.write(
        f"Pipelines: {len(pools) + 3} pools, 4 roles and {len(offsets)} follow-ups created."
    )
