"""The pipeline board on the benchmark organisation (issue 4): a static pool of 100,000
candidates spread over the default stages; the board page end to end through Django (columns
paginate, counts from one GROUP BY on the pool's index), and moving one card through the
service — each beside raw SQL doing the same reads or writes (the floor)."""

from __future__ import annotations

from bench.report import Row, time_pair
from bench.seed import BENCH_SLUG

POOL_NAME = "Bench: 100k board"
POOL_SIZE = 100_000
BOARD_TARGET_MS = 100
MOVE_TARGET_MS = 30

FILL_SQL = """
INSERT INTO pipelines_poolmembership
    (organization_id, pool_id, candidate_id, stage_id, entered_stage_at, added_at,
     added_by_id, source)
SELECT c.organization_id, %(pool)s, c.id,
       (%(stages)s::bigint[])[1 + (c.id %% cardinality(%(stages)s::bigint[]))],
       now() - (c.id %% 400) * interval '1 day', now(), NULL, 'manual'
FROM candidates_candidate c
WHERE c.organization_id = %(org)s AND c.merged_into_id IS NULL
ORDER BY c.id
LIMIT %(size)s
"""
FLOOR_BOARD_COUNTS = """
SELECT stage_id, count(*) FROM pipelines_poolmembership
WHERE organization_id = %(org)s AND pool_id = %(pool)s GROUP BY stage_id
"""
FLOOR_BOARD_COLUMN = """
SELECT m.id, m.entered_stage_at, c.first_name, c.last_name, c.current_title,
       c.current_company, u.name
FROM pipelines_poolmembership m
JOIN candidates_candidate c ON c.id = m.candidate_id
LEFT JOIN crm_user u ON u.id = c.owner_id
WHERE m.organization_id = %(org)s AND m.pool_id = %(pool)s AND m.stage_id = %(stage)s
ORDER BY m.entered_stage_at DESC, m.id DESC
LIMIT 21
"""
FLOOR_MOVE = """
WITH moved AS (
    UPDATE pipelines_poolmembership SET stage_id = %(to)s, entered_stage_at = now()
    WHERE id = %(id)s AND organization_id = %(org)s
    RETURNING candidate_id
), change AS (
    INSERT INTO pipelines_stagechange
        (organization_id, membership_id, pool_id, candidate_id, from_stage_id, to_stage_id,
         changed_by_id, changed_at)
    SELECT %(org)s, %(id)s, %(pool)s, candidate_id, %(from)s, %(to)s, NULL, now() FROM moved
)
INSERT INTO candidates_activity (organization_id, candidate_id, kind, summary, data, occurred_at)
SELECT %(org)s, candidate_id, 'stage_changed', 'Stage changed', '{}'::jsonb, now() FROM moved
"""


def _board_pool(ctx):
    """The 100k pool, created and filled once (set-based; not part of the measurement)."""
    from django_scopes import scopes_disabled

    from crm.models import Organization
    from pipelines import services
    from pipelines.models import Pool, PoolMembership
    from pipelines.selectors import pool_stages

    with scopes_disabled():
        org = Organization.objects.get(slug=BENCH_SLUG)
        services.stages_create_defaults(organization=org)
        pool, _ = Pool.objects.get_or_create(
            organization=org, name=POOL_NAME, defaults={"owner": ctx.user}
        )
        stages = [stage.pk for stage in pool_stages(pool=pool)]
        if PoolMembership.objects.filter(pool=pool).count() != POOL_SIZE:
            PoolMembership.objects.filter(pool=pool).delete()
            ctx.raw.execute(
                FILL_SQL, {"org": org.pk, "pool": pool.pk, "stages": stages, "size": POOL_SIZE}
            )
            ctx.raw.execute("VACUUM (ANALYZE) pipelines_poolmembership")
    return org, pool, stages


def workload_board(ctx) -> list[Row]:
    from django.urls import reverse
    from django_scopes import scope, scopes_disabled

    from pipelines.models import PoolMembership, Stage
    from pipelines.services import membership_move

    board = Row(
        "board: 100k-candidate pool, first page of every column",
        target=f"p95 ≤ {BOARD_TARGET_MS} ms",
        target_ms=BOARD_TARGET_MS,
    )
    move = Row(
        "board: move one card", target=f"p95 ≤ {MOVE_TARGET_MS} ms", target_ms=MOVE_TARGET_MS
    )
    org, pool, stage_ids = _board_pool(ctx)
    path = reverse("pipelines:pool_board", kwargs={"org_slug": BENCH_SLUG, "pool_id": pool.pk})

    def django_board():
        response = ctx.client.get(path)
        if response.status_code != 200:
            raise AssertionError(f"GET {path} answered {response.status_code}")

    def floor_board():
        params = {"org": org.pk, "pool": pool.pk}
        ctx.raw.execute(FLOOR_BOARD_COUNTS, params).fetchall()
        for stage_id in stage_ids:
            ctx.raw.execute(FLOOR_BOARD_COLUMN, {**params, "stage": stage_id}).fetchall()

    board.samples, board.floor = time_pair(
        django_board, floor_board, runs=ctx.args.runs, warmup=ctx.args.warmup
    )
    board.note = f"{len(stage_ids)} columns of 20 cards, counts by one GROUP BY"

    with scopes_disabled():
        cards = list(
            PoolMembership.objects.filter(pool=pool).order_by("id").values_list("id", flat=True)[:2]
        )
        stages = {stage.pk: stage for stage in Stage.objects.filter(pk__in=stage_ids)}
    state = {"django": 0, "floor": 0}

    def django_move():
        state["django"] += 1
        target = stages[stage_ids[state["django"] % len(stage_ids)]]
        with scope(organization=org):
            card = PoolMembership.objects.select_related("pool").get(pk=cards[0])
            membership_move(membership=card, to_stage=target, actor=ctx.user)

    def floor_move():
        state["floor"] += 1
        current = ctx.raw.execute(
            "SELECT stage_id FROM pipelines_poolmembership WHERE id = %s", [cards[1]]
        ).fetchone()[0]
        target = stage_ids[state["floor"] % len(stage_ids)]
        with ctx.raw.transaction():
            ctx.raw.execute(
                FLOOR_MOVE,
                {"org": org.pk, "pool": pool.pk, "id": cards[1], "from": current, "to": target},
            )

    try:
        move.samples, move.floor = time_pair(
            django_move, floor_move, runs=ctx.args.runs, warmup=ctx.args.warmup
        )
        move.note = "membership_move: lock, update, stage history row, timeline entry"
    except Exception as exc:  # the floor's columns drifted from the model: say so
        move.status, move.note = "error", f"{type(exc).__name__}: {exc}"
    return [board, move]
