"""Writes on talent pools, stages, the board, roles and follow-ups.

Adding many candidates to a pool is set-based: one ``INSERT … SELECT … ON CONFLICT DO NOTHING``
for those who enter and one bulk write of their timeline entries, whatever their number. A
smart pool is brought in line with its search by one statement (`_smart_pool_apply`): who
enters, who leaves and the timeline entries of both, the search evaluated once.
"""

import logging
from contextlib import contextmanager, nullcontext
from datetime import date, datetime, timedelta
from functools import partial

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Func, JSONField, Max, OuterRef, Q, QuerySet, Value
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate
from candidates.services.activities import (
    activities_insert_sql,
    activities_record_bulk,
    activity_record,
    candidates_mark_contacted,
)
from crm.models import Organization, Role, User
from pipelines.models import (
    FollowUp,
    FollowUpDigest,
    HiringRole,
    Pool,
    PoolMembership,
    RolePool,
    Stage,
    StageChange,
)
from pipelines.signals import candidates_entered_pool, candidates_moved_to_stage

logger = logging.getLogger(__name__)

DEFAULT_STAGES = [
    ("New", Stage.Outcome.OPEN),
    ("Contacted", Stage.Outcome.OPEN),
    ("Engaged", Stage.Outcome.OPEN),
    ("Interested", Stage.Outcome.OPEN),
    ("Interviewing", Stage.Outcome.OPEN),
    ("Hired", Stage.Outcome.WON),
    ("Not now", Stage.Outcome.LOST),
]
# Roles: a pipeline is "ready" with this many active candidates per opening …
READINESS_RATIO = 3
# … and a role whose target date is this close without that many is flagged as thin.
READINESS_WARNING_DAYS = 45
# Follow-up digests go out from this local hour of the organisation's time zone.
DIGEST_HOUR = 8


# --- stages ---


def stages_create_defaults(*, organization: Organization | int) -> list[Stage]:
    """The organisation's default stage set (New … Hired, Not now). Does nothing when the
    organisation already has default stages."""
    organization_id = getattr(organization, "pk", organization)
    with scopes_disabled():
        existing = Stage.objects.filter(organization_id=organization_id, pool__isnull=True)
        if existing.exists():
            return list(existing.order_by("position", "id"))
        return Stage.objects.bulk_create(
            [
                Stage(organization_id=organization_id, name=name, outcome=outcome, position=index)
                for index, (name, outcome) in enumerate(DEFAULT_STAGES)
            ]
        )


def _stage_siblings(stage: Stage) -> QuerySet[Stage]:
    return Stage.objects.filter(organization_id=stage.organization_id, pool_id=stage.pool_id)


# The first key of the transaction lock that lets one stage name be written at a time in an
# organisation (the second is the organisation's id; see _stage_name_write).
STAGE_NAME_LOCK_NAMESPACE = 0x5A9E


def _stage_name_clash(name: str) -> ValidationError:
    return ValidationError({"name": f"There is already a stage called “{name}”."})


@contextmanager
def _stage_name_write(*, organization_id: int, pool: Pool | None, name: str, exclude=None):
    """Check that no active stage of the pipeline is called `name` (in any case) and keep it so
    while the caller writes it: the check and the write are one step for every writer of stage
    names here — two admins adding "Offer" at once, or "Offer" and "offer", get the message
    instead of a 500 or two stages of one name. An advisory lock, not the stages' rows: those
    are held FOR SHARE by every move and entry (_stage_share), a big refresh's for seconds.
    A clash with a write that does not take the lock (the operators' admin) is refused by the
    database's constraint and given the same message."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [STAGE_NAME_LOCK_NAMESPACE, organization_id & 0x7FFFFFFF],
            )
        clash = Stage.objects.filter(
            organization_id=organization_id, pool=pool, archived=False, name__iexact=name
        )
        if exclude is not None:
            clash = clash.exclude(pk=exclude.pk)
        if clash.exists():
            raise _stage_name_clash(name)
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction goes on
                yield
        except IntegrityError as error:
            if getattr(error.__cause__, "diag", None) is None or (
                error.__cause__.diag.constraint_name != "stage_name_unique_active"
            ):
                raise
            raise _stage_name_clash(name) from None


def stage_create(
    *, organization: Organization, name: str, outcome: str, pool: Pool | None = None
) -> Stage:
    """A new stage at the end of the pipeline (the organisation's, or a pool's own)."""
    name = " ".join(name.split())
    with _stage_name_write(organization_id=organization.pk, pool=pool, name=name):
        last = Stage.objects.filter(organization=organization, pool=pool).aggregate(
            position=Max("position")
        )["position"]
        return Stage.objects.create(
            organization=organization,
            pool=pool,
            name=name,
            outcome=outcome,
            position=0 if last is None else last + 1,
        )


def _lock_stage_set(stage: Stage) -> list[Stage]:
    """Lock the stages of `stage`'s set (the organisation's defaults, or a pool's own), in id
    order: changes that must leave the set with an open stage (an outcome changed, a stage
    archived) are serialised. Returns them as they are now."""
    return list(_stage_siblings(stage).select_for_update().order_by("id"))


def _check_keeps_an_open_stage(*, stage: Stage, siblings: list[Stage]) -> None:
    """Refuse when `stage` is the only active open stage of its set: new pool members enter
    the first open stage, so a pipeline without one would put them straight into "Hired"."""
    if not any(
        other.pk != stage.pk and not other.archived and other.outcome == Stage.Outcome.OPEN
        for other in siblings
    ):
        raise ValidationError("A pipeline needs at least one open stage.")


def stage_update(*, stage: Stage, name: str, outcome: str) -> Stage:
    """Rename a stage or change its outcome. History keeps pointing at the same stage. The
    last open stage of a pipeline stays open."""
    name = " ".join(name.split())
    with _stage_name_write(
        organization_id=stage.organization_id, pool=stage.pool, name=name, exclude=stage
    ):
        siblings = _lock_stage_set(stage)
        current = next(sibling for sibling in siblings if sibling.pk == stage.pk)
        if (
            current.outcome == Stage.Outcome.OPEN
            and outcome != Stage.Outcome.OPEN
            and not current.archived
        ):
            try:
                _check_keeps_an_open_stage(stage=current, siblings=siblings)
            except ValidationError as error:
                raise ValidationError(
                    {"outcome": f"{error.messages[0]} Add or reopen another one first."}
                ) from None
        stage.name = name
        stage.outcome = outcome
        stage.save(update_fields=["name", "outcome"])
    return stage


@transaction.atomic
def stage_reorder(*, stage: Stage, direction: str) -> None:
    """Move a stage one place up or down among the active stages of its set."""
    siblings = list(
        _stage_siblings(stage).filter(archived=False).select_for_update().order_by("position", "id")
    )
    index = next((i for i, sibling in enumerate(siblings) if sibling.pk == stage.pk), None)
    if index is None:
        return
    target = index - 1 if direction == "up" else index + 1
    if not 0 <= target < len(siblings):
        return
    siblings[index], siblings[target] = siblings[target], siblings[index]
    for position, sibling in enumerate(siblings):
        sibling.position = position
    Stage.objects.bulk_update(siblings, ["position"])


# Cards moved per statement when a stage is archived with its candidates.
STAGE_ARCHIVE_MOVE_CHUNK = 5000


def stage_archive(*, stage: Stage, move_to: Stage | None = None, actor: User | None = None) -> int:
    """Hide a stage from boards. Stages are never deleted (history points at them). The
    candidates still in it, in every pool that uses it, move to `move_to` first — each move
    recorded like any other (stage history, timeline) — or, without `move_to`, the archive is
    refused. Returns how many cards moved."""
    with transaction.atomic():
        return _stage_archive(stage=stage, move_to=move_to, actor=actor)


def _stage_archive(*, stage: Stage, move_to: Stage | None, actor: User | None) -> int:
    # The set's stages are locked first: no concurrent outcome change or archive can leave it
    # without an open stage, and `move_to` cannot be archived meanwhile.
    siblings = _lock_stage_set(stage)
    _check_keeps_an_open_stage(stage=stage, siblings=siblings)
    if move_to is not None:
        move_to = next((sibling for sibling in siblings if sibling.pk == move_to.pk), move_to)
    memberships = PoolMembership.objects.filter(organization_id=stage.organization_id, stage=stage)
    count = memberships.count()
    if count and move_to is None:
        raise ValidationError(
            f"{count} candidate{'s are' if count != 1 else ' is'} in “{stage.name}”. "
            "Choose the stage they move to, or move them first."
        )
    if count and (
        move_to.pk == stage.pk
        or move_to.archived
        or move_to.organization_id != stage.organization_id
        or move_to.pool_id != stage.pool_id
    ):
        raise ValidationError("Choose another active stage of the same pipeline.")
    moved = 0
    # Every pool that uses the stage, archived ones included (their boards are read-only to
    # people, not to this), and private pools the admin cannot see: their cards must not stay
    # in a hidden stage, and no error here names a pool.
    for pool in Pool.objects.filter(
        organization_id=stage.organization_id,
        pk__in=memberships.values("pool_id").distinct(),
    ):
        ids = list(memberships.filter(pool=pool).values_list("pk", flat=True))
        for start in range(0, len(ids), STAGE_ARCHIVE_MOVE_CHUNK):
            moved += memberships_move_bulk(
                pool=pool,
                membership_ids=ids[start : start + STAGE_ARCHIVE_MOVE_CHUNK],
                to_stage=move_to,
                actor=actor,
                archived_pool_too=True,
            )
    stage.archived = True
    stage.save(update_fields=["archived"])
    return moved


def stage_restore(*, stage: Stage) -> None:
    with _stage_name_write(
        organization_id=stage.organization_id, pool=stage.pool, name=stage.name, exclude=stage
    ):
        last = _stage_siblings(stage).filter(archived=False).aggregate(position=Max("position"))
        stage.archived = False
        stage.position = (last["position"] or 0) + 1
        stage.save(update_fields=["archived", "position"])


def _stage_share(stage: Stage) -> tuple[bool, str] | None:
    """Lock a stage FOR SHARE until the transaction ends and read it again: (archived,
    outcome) as they are now, after any archive or outcome change that held the stage (those
    lock it FOR UPDATE, see _lock_stage_set). Writers that put cards into a stage call this,
    so that no card lands in a stage archived meanwhile, where no board shows it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT archived, outcome FROM {Stage._meta.db_table} WHERE id = %s FOR SHARE",  # noqa: S608 - table name from the model
            [stage.pk],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def _pool_share(pool: Pool) -> None:
    """Lock the pool's row FOR KEY SHARE until the transaction ends and read again what decides
    where its new members go: `custom_stages` and `archived_at` as they are now, after a
    "customise stages" that held the row (it locks it FOR UPDATE) has committed. `pool` was
    often read before that (by a page, by a task before it waited for a lock). The weakest
    lock: it does not wait for a smart pool's refresh (FOR NO KEY UPDATE), and the members'
    own foreign-key check takes it anyway."""
    sql = f"SELECT custom_stages, archived_at FROM {Pool._meta.db_table} WHERE id = %s"  # noqa: S608 - table name from the model
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} FOR KEY SHARE", [pool.pk])
        row = cursor.fetchone()
    if row is None:
        raise ValidationError(f"“{pool.name}” was deleted a moment ago.")
    pool.custom_stages, pool.archived_at = row


def _entry_stage(pool: Pool) -> Stage:
    """Where new members of a pool start: its first open stage, in the stages the pool uses now
    (`pool` is read again: _pool_share). Pool and stage stay locked until the transaction ends
    (callers insert the members in the same transaction)."""
    from pipelines.selectors import pool_stages

    _pool_share(pool)
    for _attempt in range(3):
        stages = pool_stages(pool=pool)
        stage = next((each for each in stages if each.outcome == Stage.Outcome.OPEN), None)
        if stage is None and stages:
            stage = stages[0]
        if stage is None:
            break
        # Read before the lock: a stage archived (or closed) meanwhile means choosing again.
        if _stage_share(stage) == (False, stage.outcome):
            return stage
    raise ValidationError("This pool's pipeline has no stages.")


@transaction.atomic
def pool_customize_stages(*, pool: Pool) -> list[Stage]:
    """Give a pool its own copy of the organisation's stages (to rename or extend them for
    this pool only); its members keep their place in the copied stages."""
    from pipelines.selectors import stages_default

    pool = Pool.objects.select_for_update().get(pk=pool.pk)
    if pool.custom_stages:
        return list(Stage.objects.filter(organization_id=pool.organization_id, pool=pool))
    defaults = stages_default(organization=pool.organization_id)
    copies = Stage.objects.bulk_create(
        [
            Stage(
                organization_id=pool.organization_id,
                pool=pool,
                name=stage.name,
                outcome=stage.outcome,
                position=stage.position,
            )
            for stage in defaults
        ]
    )
    memberships = PoolMembership.objects.filter(organization_id=pool.organization_id, pool=pool)
    for original, copy in zip(defaults, copies, strict=True):
        memberships.filter(stage=original).update(stage=copy)
    pool.custom_stages = True
    pool.save(update_fields=["custom_stages", "updated_at"])
    return copies


# --- pools ---


def pool_create(*, organization: Organization, owner: User, **fields) -> Pool:
    pool = Pool.objects.create(organization=organization, owner=owner, **fields)
    if pool.is_smart:
        pool_schedule_refresh(pool=pool)
    return pool


def pool_update(*, pool: Pool, **fields) -> Pool:
    rule_changed = (
        fields.get("kind", pool.kind) != pool.kind
        or fields.get("saved_search", pool.saved_search) != pool.saved_search
    )
    for name, value in fields.items():
        setattr(pool, name, value)
    # Only the settings: a concurrent archive or "customise stages" must not be undone by
    # writing back the rest of a row read before it.
    pool.save(update_fields=[*fields, "updated_at"])
    if pool.is_smart and rule_changed:
        pool_schedule_refresh(pool=pool)
    return pool


def pool_archive(*, pool: Pool) -> Pool:
    """Archive a pool (what recruiters do instead of deleting one): hidden from lists and
    pickers, its board read-only, a smart pool no longer follows its search; memberships and
    stage history stay, so funnel and time-in-stage analytics keep their past."""
    if pool.archived_at is None:
        pool.archived_at = timezone.now()
        pool.save(update_fields=["archived_at", "updated_at"])
    return pool


def pool_restore(*, pool: Pool) -> Pool:
    """Bring an archived pool back; a smart pool catches up with its search."""
    if pool.archived_at is not None:
        pool.archived_at = None
        pool.save(update_fields=["archived_at", "updated_at"])
        if pool.is_smart:
            pool_schedule_refresh(pool=pool)
    return pool


def pool_history_count(*, pool: Pool) -> int:
    """How many stage-history rows deleting this pool for good would destroy."""
    return StageChange.objects.filter(organization_id=pool.organization_id, pool=pool).count()


def _check_open(pool: Pool) -> None:
    if pool.archived_at is not None:
        raise ValidationError(f"“{pool.name}” is archived: restore it to change its board.")


def pool_campaigns(*, pool: Pool) -> list:
    """The campaigns that use a pool — as (part of) their audience, as an exclusion or to
    auto-join a sequence — whatever their status, newest first. Such a pool is not deleted
    (see pool_delete)."""
    # Through the reverse relations: pipelines never imports campaigns (campaigns builds on it).
    campaign_model = pool.campaigns.model
    return list(
        campaign_model.objects.filter(organization_id=pool.organization_id)
        .filter(
            Q(pk__in=pool.campaigns.values("pk"))
            | Q(pk__in=pool.excluded_from_campaigns.values("pk"))
            | Q(auto_join_pool_id=pool.pk)
        )
        .order_by("-created_at", "-id")
    )


def pool_campaigns_refusal(*, campaigns: list) -> str:
    """Why a pool used by `campaigns` cannot be deleted."""
    if len(campaigns) == 1:
        who = f"The campaign “{campaigns[0].name}” uses"
    else:
        others = len(campaigns) - 1
        who = f"“{campaigns[0].name}” and {others} other campaign{'s' if others != 1 else ''} use"
    return f"{who} this pool (as audience, exclusion or auto-join): archive it instead."


@transaction.atomic
def pool_delete(*, pool: Pool) -> None:
    """Delete a pool for good (admins only, after a confirmation that says how many history
    rows go: see pool_history_count) with its memberships, stage history and own stages. The
    candidates' timelines keep the entries that mention it; a private pool's are marked, so
    that nobody (once nobody can see the pool) reads its name there.

    Refused while any campaign uses the pool (pool_campaigns), finished ones too: deleting it
    would drop it from their audiences and exclusions — a campaign that left out "Current
    employees" would email them — and a finished campaign's record would lose who it was for."""
    organization_id = pool.organization_id
    # The pool row locked first: a campaign being saved with this pool (its foreign-key check
    # shares the row) commits before the check below, or waits until the pool is gone.
    Pool.objects.select_for_update().filter(pk=pool.pk).values_list("pk").first()
    campaigns = pool_campaigns(pool=pool)
    if campaigns:
        raise ValidationError(pool_campaigns_refusal(campaigns=campaigns))
    if pool.visibility == Pool.Visibility.OWNER:
        Activity.objects.filter(organization_id=organization_id, data__pool_id=pool.pk).update(
            data=Func(
                F("data"),
                Value({"private_pool_deleted": True}, JSONField()),
                function="",
                arg_joiner=" || ",
            )
        )
    RolePool.objects.filter(organization_id=organization_id, pool=pool).delete()
    StageChange.objects.filter(organization_id=organization_id, pool=pool).delete()
    PoolMembership.objects.filter(organization_id=organization_id, pool=pool).delete()
    Stage.objects.filter(organization_id=organization_id, pool=pool).delete()
    pool.delete()


def pool_schedule_refresh(*, pool: Pool) -> None:
    """Materialise a smart pool in the background once the current transaction commits."""
    from pipelines.tasks import smart_pool_refresh_task

    organization_id, pool_id = pool.organization_id, pool.pk
    transaction.on_commit(
        lambda: smart_pool_refresh_task.delay(organization_id=organization_id, pool_id=pool_id)
    )


def _sql(queryset: QuerySet) -> tuple[str, tuple]:
    """The SQL of a queryset of candidate ids (one column, no ordering)."""
    return queryset.order_by().values("pk").query.sql_with_params()


def _insert_members(
    *, pool: Pool, ids_sql: str, ids_params: tuple, actor: User | None, source: str
) -> list[int]:
    """INSERT … SELECT … ON CONFLICT DO NOTHING; returns the ids of the candidates that were
    not in the pool before."""
    stage = _entry_stage(pool)
    _check_open(pool)  # as it is now: archived since `pool` was read, nobody enters
    now = timezone.now()
    sql = f"""
        INSERT INTO {PoolMembership._meta.db_table}
            (organization_id, pool_id, candidate_id, stage_id, entered_stage_at, added_at,
             added_by_id, source)
        SELECT %s, %s, entrant.id, %s, %s, %s, %s, %s FROM ({ids_sql}) AS entrant (id)
        ON CONFLICT (organization_id, pool_id, candidate_id) DO NOTHING
        RETURNING candidate_id
    """  # noqa: S608 - table name from the model, values are parameters
    params = (
        pool.organization_id,
        pool.pk,
        stage.pk,
        now,
        now,
        actor.pk if actor else None,
        source,
        *ids_params,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _record_entries(*, pool: Pool, candidate_ids: list[int], actor: User | None, smart: bool):
    if not candidate_ids:
        return
    summary = f"Added to the pool “{pool.name}”"
    if smart:
        summary = f"Entered the smart pool “{pool.name}” (matches its search)"
    activities_record_bulk(
        organization_id=pool.organization_id,
        candidate_ids=candidate_ids,
        kind=Activity.Kind.POOL_ADDED,
        summary=summary,
        actor=actor,
        data={"pool_id": pool.pk, "source": "smart" if smart else "manual"},
    )
    # Every way into a pool comes through here: tell the apps that react (campaign sequences
    # that auto-join from this pool).
    candidates_entered_pool.send(sender=Pool, pool=pool, candidate_ids=list(candidate_ids))


def _record_exits(*, pool: Pool, candidate_ids: list[int], actor: User | None, smart: bool):
    if not candidate_ids:
        return
    summary = f"Removed from the pool “{pool.name}”"
    if smart:
        summary = f"Left the smart pool “{pool.name}” (no longer matches its search)"
    activities_record_bulk(
        organization_id=pool.organization_id,
        candidate_ids=candidate_ids,
        kind=Activity.Kind.POOL_REMOVED,
        summary=summary,
        actor=actor,
        data={"pool_id": pool.pk, "source": "smart" if smart else "manual"},
    )


def pool_add_candidates(
    *,
    pool: Pool,
    candidate_ids: list[int] | None = None,
    queryset: QuerySet[Candidate] | None = None,
    actor: User | None,
) -> int:
    """Add candidates (by id, or everyone a queryset finds) to a pool in one statement;
    those already in it stay where they are. Returns how many joined."""
    if candidate_ids is None and queryset is None:
        raise TypeError("Give candidate_ids or queryset.")
    _check_open(pool)
    candidates = Candidate.objects.filter(
        organization_id=pool.organization_id, merged_into__isnull=True
    )
    if queryset is not None:
        candidates = candidates.filter(pk__in=queryset.order_by().values("pk"))
    if candidate_ids is not None:
        candidates = candidates.filter(pk__in=list(candidate_ids))
    ids_sql, ids_params = _sql(candidates)
    with transaction.atomic():
        entered = _insert_members(
            pool=pool,
            ids_sql=ids_sql,
            ids_params=ids_params,
            actor=actor,
            source=PoolMembership.Source.MANUAL,
        )
        _record_entries(pool=pool, candidate_ids=entered, actor=actor, smart=False)
    return len(entered)


# The candidate list's "Add to pool…" on a selection, run by candidates.services.bulk as the
# list's own bulk actions are: at once for a few candidates, else as a job in batches with a
# progress page (registered in PipelinesConfig.ready()).
POOL_ADD_ACTION = "pool_add"


def pool_add_args(*, pool: Pool) -> dict:
    """What adding a selection to `pool` keeps in its job: the pool, and how the job's page
    names it — a private pool by no name, as any recruiter of the organisation may open a
    job's page."""
    return {
        "pool_id": pool.pk,
        "pool_name": pool.name,
        "private": pool.visibility == Pool.Visibility.OWNER,
    }


def _pool_named(args: dict) -> str:
    return "a private pool" if args.get("private") else f"“{args.get('pool_name', '')}”"


def _pool_add_refusal(*, pool: Pool | None, args: dict, actor: User | None) -> str:
    """Why candidates can no longer be added to the pool a job was started for ("" if they
    can): the rules of the add-to-pool page, as they are when the batch runs."""
    from pipelines.selectors import pool_visible_to

    named = "The private pool" if args.get("private") else _pool_named(args)
    if pool is None:
        return f"{named} was deleted: nobody more was added."
    if pool.is_archived:
        return f"{named} is archived: nobody more was added. Restore it to add the rest."
    if pool.is_smart:
        return (
            f"{named} is now a smart pool, which holds those its saved search finds: nobody "
            "more was added."
        )
    if actor is not None and not pool_visible_to(pool=pool, user=actor):
        return f"{named} is now a colleague's private pool: nobody more was added."
    return ""


def pool_add_selection(
    *, organization_id: int, args: dict, ids: list[int], actor: User | None = None
) -> int:
    """One batch of the candidate list's "Add to pool" (`args`: pool_add_args): add the
    candidates `ids` to the pool, in the caller's transaction. Someone already in the pool
    keeps their card and gets no second timeline entry and no second `candidates_entered_pool`
    (ON CONFLICT DO NOTHING), so a batch done again — a job resumed after a crash — adds
    nobody twice. Refused with a ValidationError, which stops a job with its words, when the
    pool was deleted, archived, made smart or private to a colleague since the page was
    posted (Resume tries again). Returns how many joined."""
    pool = Pool.objects.filter(organization_id=organization_id, pk=args["pool_id"]).first()
    refusal = _pool_add_refusal(pool=pool, args=args, actor=actor)
    if refusal or pool is None:
        raise ValidationError(refusal)
    return pool_add_candidates(pool=pool, candidate_ids=ids, actor=actor)


def pool_add_outcome(args: dict, added: int, total: int) -> list[str]:
    """What "Add to pool" did, sentence by sentence (`total`: the candidates it found): the
    messages after an inline run and the outcome on a finished job's page."""
    named = _pool_named(args)
    if added:
        said = [f"{added:,} candidate{'s' if added != 1 else ''} added to {named}."]
        if added < total:
            already = total - added
            said.append(f"{already:,} {'was' if already == 1 else 'were'} already in it.")
        return said
    if total:
        return [f"Everyone selected was already in {named}."]
    return [f"Nobody was added to {named}."]


def pool_remove_candidates(*, pool: Pool, candidate_ids: list[int], actor: User | None) -> int:
    _check_open(pool)
    with transaction.atomic():
        removed = list(
            PoolMembership.objects.filter(
                organization_id=pool.organization_id, pool=pool, candidate_id__in=candidate_ids
            ).values_list("candidate_id", flat=True)
        )
        PoolMembership.objects.filter(
            organization_id=pool.organization_id, pool=pool, candidate_id__in=removed
        ).delete()
        _record_exits(pool=pool, candidate_ids=removed, actor=actor, smart=False)
    return len(removed)


# --- the board ---


def _check_stage_of_pool(*, pool: Pool, stage: Stage) -> None:
    belongs = (
        stage.organization_id == pool.organization_id
        and not stage.archived
        and (stage.pool_id == pool.pk if pool.custom_stages else stage.pool_id is None)
    )
    if not belongs:
        raise ValidationError("That stage is not part of this pool's pipeline.")


def _check_stage_not_archived_meanwhile(stage: Stage) -> None:
    current = _stage_share(stage)
    if current is None or (current[0] and not stage.archived):
        raise ValidationError("That stage was archived a moment ago. Reload the board.")


def membership_move(
    *, membership: PoolMembership, to_stage: Stage, actor: User | None
) -> StageChange | None:
    """Move a card to another stage. The membership row is locked, so two people moving the
    same card at once are serialised: the last move wins and both are in the history.
    Returns the recorded change (None when the card was already there)."""
    with transaction.atomic():
        # The target stage first (stages before cards, like stage_archive): archived meanwhile,
        # the move is refused rather than hiding the card in it.
        _check_stage_not_archived_meanwhile(to_stage)
        # Lock the row alone: with joins, PostgreSQL re-checks a row that a concurrent move
        # changed against the *old* joined stage and would drop it.
        locked = PoolMembership.objects.select_for_update().filter(pk=membership.pk).first()
        if locked is None:
            raise ValidationError(
                "Someone removed this candidate from the pool a moment ago. Reload the board."
            )
        pool = membership.pool
        _check_open(pool)
        _check_stage_of_pool(pool=pool, stage=to_stage)
        if locked.stage_id == membership.stage_id:
            from_stage = membership.stage
        else:
            from_stage = Stage.objects.get(pk=locked.stage_id)
        if from_stage.pk == to_stage.pk:
            membership.stage, membership.entered_stage_at = from_stage, locked.entered_stage_at
            return None
        now = timezone.now()
        locked.stage = to_stage
        locked.entered_stage_at = now
        locked.save(update_fields=["stage", "entered_stage_at"])
        change = StageChange.objects.create(
            organization_id=locked.organization_id,
            pool=pool,
            membership=locked,
            candidate_id=locked.candidate_id,
            from_stage=from_stage,
            to_stage=to_stage,
            changed_by=actor,
            changed_at=now,
        )
        activity_record(
            candidate=membership.candidate,
            kind=Activity.Kind.STAGE_CHANGED,
            summary=f"{pool.name}: {from_stage.name} → {to_stage.name}",
            actor=actor,
            data={
                "pool_id": pool.pk,
                "from_stage_id": from_stage.pk,
                "to_stage_id": to_stage.pk,
            },
            occurred_at=now,
        )
        candidates_moved_to_stage.send(
            sender=Stage, pool=pool, stage=to_stage, candidate_ids=[locked.candidate_id]
        )
    membership.stage, membership.entered_stage_at = to_stage, now
    return change


def memberships_move_bulk(
    *,
    pool: Pool,
    membership_ids: list[int],
    to_stage: Stage,
    actor: User | None,
    archived_pool_too: bool = False,
) -> int:
    """Move a selection of cards to one stage: one UPDATE, one bulk insert of history and of
    timeline entries. Returns how many cards moved. `archived_pool_too`: also in an archived
    pool (archiving a stage empties it in every pool that uses it)."""
    if not archived_pool_too:
        _check_open(pool)
    _check_stage_of_pool(pool=pool, stage=to_stage)
    now = timezone.now()
    with transaction.atomic():
        _check_stage_not_archived_meanwhile(to_stage)
        rows = list(
            PoolMembership.objects.select_for_update()
            .filter(organization_id=pool.organization_id, pool=pool, pk__in=membership_ids)
            .exclude(stage=to_stage)
            .values_list("pk", "candidate_id", "stage_id")
        )
        if not rows:
            return 0
        PoolMembership.objects.filter(pk__in=[row[0] for row in rows]).update(
            stage=to_stage, entered_stage_at=now
        )
        StageChange.objects.bulk_create(
            [
                StageChange(
                    organization_id=pool.organization_id,
                    pool=pool,
                    membership_id=pk,
                    candidate_id=candidate_id,
                    from_stage_id=from_stage_id,
                    to_stage=to_stage,
                    changed_by=actor,
                    changed_at=now,
                )
                for pk, candidate_id, from_stage_id in rows
            ]
        )
        activities_record_bulk(
            organization_id=pool.organization_id,
            candidate_ids=[row[1] for row in rows],
            kind=Activity.Kind.STAGE_CHANGED,
            summary=f"{pool.name}: moved to {to_stage.name}",
            actor=actor,
            data={"pool_id": pool.pk, "to_stage_id": to_stage.pk},
        )
        candidates_moved_to_stage.send(
            sender=Stage, pool=pool, stage=to_stage, candidate_ids=[row[1] for row in rows]
        )
    return len(rows)


# --- smart pools ---

# A refresh that changes at least this many memberships analyses the table before it returns.
# Until the statistics know a big pool's new rows, the planner takes the pool for (nearly)
# empty and finds one candidate's membership by walking the pool_id index over the whole pool:
# after the benchmark's 307k-member materialise that was 60-175 ms per lookup instead of
# ~0.1 ms — in every re-evaluation, board and profile query — until autovacuum analysed the
# table, a minute or more later. ANALYZE reads a sample of 30,000 rows, ~0.1-0.3 s.
ANALYZE_AFTER_CHANGES = 10_000
NO_CANDIDATES_SQL = "SELECT NULL::bigint WHERE FALSE"


def _smart_queryset(pool: Pool) -> QuerySet[Candidate] | None:
    """Who the smart pool's rule finds now; None when it has no rule, or a rule that no longer
    holds (an owner who left, a removed choice or field): the pool then stays as it is —
    finding nobody would empty it, and leaving the broken filter out would fill it with
    everyone."""
    from candidates.selectors import saved_search_found

    if not pool.is_smart or pool.saved_search_id is None:
        return None
    found, problem = saved_search_found(saved_search=pool.saved_search)
    if problem:
        logger.warning(
            "pipelines.smart: the rule of pool %s no longer holds (%s); the pool is left as it is",
            pool.pk,
            problem,
        )
        return None
    return found.filter(organization_id=pool.organization_id, merged_into__isnull=True)


def _smart_pool_apply(
    *,
    pool: Pool,
    stage: Stage | None,
    matching_sql: str,
    matching_params: tuple | list,
    only_candidate_id: int | None = None,
    skip_present: bool = True,
) -> tuple[list[int], list[int]]:
    """Bring a smart pool in line with `matching_sql` (the ids of the candidates its search finds
    now) in one statement, with the timeline: those who match and are not in the pool enter it
    at `stage` (an anti-join), those who are in it because they matched and no longer do leave
    it (their stage history is kept: the database unlinks it from the membership, ON DELETE SET
    NULL, including a move committed while this waited for the card), and each of them gets a
    timeline entry. The search is evaluated once.

    `skip_present`: ON CONFLICT DO NOTHING as well, for candidates the anti-join cannot see
    (added by a concurrent transaction, or named twice by the search). Without it a conflict is
    a unique violation (IntegrityError) — and each inserted row is ~2 µs cheaper (speculative
    insertion: a second index probe and a confirmation record per row, +0.5 s for 300,000).
    `only_candidate_id` limits who may leave to that candidate (re-evaluating one person: the
    rest of the pool is not in `matching_sql`). `stage` may be None when nobody can enter.
    Returns (ids of those who entered, ids of those who left)."""
    table = PoolMembership._meta.db_table
    organization_id = pool.organization_id
    source = PoolMembership.Source.SMART
    now = timezone.now()
    data = {"pool_id": pool.pk, "source": "smart"}
    entries_sql, entries_params = activities_insert_sql(
        organization_id=organization_id,
        candidates_from="entered",
        kind=Activity.Kind.POOL_ADDED,
        summary=f"Entered the smart pool “{pool.name}” (matches its search)",
        data=data,
        occurred_at=now,
    )
    exits_sql, exits_params = activities_insert_sql(
        organization_id=organization_id,
        candidates_from="departed",
        kind=Activity.Kind.POOL_REMOVED,
        summary=f"Left the smart pool “{pool.name}” (no longer matches its search)",
        data=data,
        occurred_at=now,
    )
    only_candidate = "" if only_candidate_id is None else "AND member.candidate_id = %s"
    on_conflict = "ON CONFLICT (organization_id, pool_id, candidate_id) DO NOTHING"
    sql = f"""
        WITH matching (id) AS MATERIALIZED ({matching_sql}),
        entered AS (
            INSERT INTO {table}
                (organization_id, pool_id, candidate_id, stage_id, entered_stage_at, added_at,
                 added_by_id, source)
            SELECT %s, %s, matching.id, %s, %s, %s, NULL, %s FROM matching
            WHERE NOT EXISTS (
                SELECT 1 FROM {table} AS present
                WHERE present.organization_id = %s AND present.pool_id = %s
                  AND present.candidate_id = matching.id)
            {on_conflict if skip_present else ""}
            RETURNING candidate_id
        ),
        departed AS (
            DELETE FROM {table} AS member
            WHERE member.organization_id = %s AND member.pool_id = %s AND member.source = %s
              {only_candidate}
              AND NOT EXISTS (SELECT 1 FROM matching WHERE matching.id = member.candidate_id)
            RETURNING member.id, member.candidate_id
        ),
        entries AS ({entries_sql}),
        exits AS ({exits_sql})
        SELECT TRUE, candidate_id FROM entered
        UNION ALL
        SELECT FALSE, candidate_id FROM departed
    """  # noqa: S608 - table names from the models, values are parameters
    params = [
        *matching_params,
        organization_id,
        pool.pk,
        stage.pk if stage is not None else None,
        now,
        now,
        source,
        organization_id,
        pool.pk,
        organization_id,
        pool.pk,
        source,
        *([] if only_candidate_id is None else [only_candidate_id]),
        *entries_params,
        *exits_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    entered = [candidate_id for is_entry, candidate_id in rows if is_entry]
    left = [candidate_id for is_entry, candidate_id in rows if not is_entry]
    if entered:
        # Every way into a pool announces itself (campaign sequences auto-join from pools).
        candidates_entered_pool.send(sender=Pool, pool=pool, candidate_ids=entered)
    return entered, left


def _analyze_memberships() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PoolMembership._meta.db_table}")


def smart_pool_refresh(*, pool: Pool) -> tuple[int, int]:
    """Materialise a smart pool: everyone its saved search finds now is in it, and those added
    because they matched but no longer do leave (people added by hand stay) — one statement
    for the memberships and their timeline entries (see `_smart_pool_apply`). Returns
    (entered, left)."""
    with transaction.atomic():
        # One refresh of a pool at a time. NO KEY UPDATE: memberships written meanwhile (by
        # hand, by a re-evaluation) lock the pool FOR KEY SHARE in their foreign-key check and
        # need not wait for the refresh. The pool is read again under the lock: an archive, a
        # "customise stages" or a new rule committed while this waited is what counts.
        pool = (
            Pool.objects.select_for_update(no_key=True, of=("self",))
            .select_related("saved_search")
            .filter(organization_id=pool.organization_id, pk=pool.pk)
            .first()
        )
        queryset = None if pool is None else _smart_queryset(pool)
        if queryset is None or pool.archived_at is not None:  # an archived pool stays as it was
            return 0, 0
        ids_sql, ids_params = _sql(queryset)
        apply = partial(
            _smart_pool_apply,
            pool=pool,
            stage=_entry_stage(pool),
            matching_sql=ids_sql,
            matching_params=ids_params,
        )
        try:
            with transaction.atomic():  # a savepoint
                entered, left = apply(skip_present=False)
        except IntegrityError:
            # Someone added one of the entrants meanwhile (or the search names someone twice):
            # rare, so the refresh is optimistic and only then skips those already present.
            entered, left = apply(skip_present=True)
        Pool.objects.filter(pk=pool.pk).update(refreshed_at=timezone.now())
    if len(entered) + len(left) >= ANALYZE_AFTER_CHANGES:
        _analyze_memberships()
    return len(entered), len(left)


def smart_pools_reevaluate_candidate(*, candidate: Candidate) -> dict[int, str]:
    """After one candidate changed: put them into the smart pools whose search they now
    match and take them out of those they no longer match. One query decides for every
    smart pool at once (and reads the candidate's memberships); each pool they enter or leave
    costs one more statement. Returns {pool_id: "entered" | "left"}."""
    pools = list(
        Pool.objects.filter(
            organization_id=candidate.organization_id,
            kind=Pool.Kind.SMART,
            saved_search__isnull=False,
            archived_at__isnull=True,
        ).select_related("saved_search", "saved_search__organization")
    )
    if not pools:
        return {}
    checks = {}
    ruled = []
    for pool in pools:
        queryset = _smart_queryset(pool)
        if queryset is None:  # a rule that no longer holds: nobody enters or leaves
            continue
        ruled.append(pool)
        checks[f"pool_{pool.pk}"] = Exists(queryset.order_by().filter(pk=OuterRef("pk")))
    pools = ruled
    if not pools:
        return {}
    memberships = PoolMembership.objects.filter(
        organization_id=candidate.organization_id, candidate_id=OuterRef("pk")
    )
    checks["member_of"] = ArraySubquery(memberships.values("pool_id"))
    checks["smart_member_of"] = ArraySubquery(
        memberships.filter(source=PoolMembership.Source.SMART).values("pool_id")
    )
    decided = (
        Candidate.objects.filter(pk=candidate.pk, merged_into__isnull=True)
        .annotate(**checks)
        .values(*checks)
        .first()
    )
    if decided is None:
        return {}
    entering = [
        pool for pool in pools if decided[f"pool_{pool.pk}"] and pool.pk not in decided["member_of"]
    ]
    leaving = [
        pool
        for pool in pools
        if not decided[f"pool_{pool.pk}"] and pool.pk in decided["smart_member_of"]
    ]
    outcome: dict[int, str] = {}
    # Each change is one statement, atomic on its own; a transaction only when there are more,
    # or when someone enters (the entry stage stays locked until they are in: _entry_stage).
    with transaction.atomic() if entering or len(leaving) > 1 else nullcontext():
        for pool in entering:
            stage = _entry_stage(pool)
            if pool.archived_at is not None:  # archived since it was read: stays as it was
                continue
            entered, _ = _smart_pool_apply(
                pool=pool,
                stage=stage,
                matching_sql="SELECT %s::bigint",
                matching_params=[candidate.pk],
                only_candidate_id=candidate.pk,
            )
            if entered:
                outcome[pool.pk] = "entered"
        for pool in leaving:
            _, left = _smart_pool_apply(
                pool=pool,
                stage=None,
                matching_sql=NO_CANDIDATES_SQL,
                matching_params=[],
                only_candidate_id=candidate.pk,
            )
            if left:
                outcome[pool.pk] = "left"
    return outcome


# --- roles ---


@transaction.atomic
def role_save(
    *,
    organization: Organization,
    role: HiringRole | None = None,
    pools: list[Pool],
    actor: User | None,
    choosable_pools: QuerySet[Pool] | None = None,
    **fields,
) -> HiringRole:
    """Create or update a role and set the pools that feed it. With `choosable_pools` (the
    pools the editor could tick: those they can see), links to other pools — someone else's
    private pool — are left as they are."""
    if role is None:
        role = HiringRole(organization=organization, created_by=actor)
    for name, value in fields.items():
        setattr(role, name, value)
    role.save()
    wanted = {pool.pk for pool in pools}
    links = RolePool.objects.filter(organization=organization, role=role)
    unlinked = links.exclude(pool_id__in=wanted)
    if choosable_pools is not None:
        unlinked = unlinked.filter(pool__in=choosable_pools)
    unlinked.delete()
    present = set(links.values_list("pool_id", flat=True))
    RolePool.objects.bulk_create(
        [
            RolePool(organization=organization, role=role, pool_id=pool_id)
            for pool_id in sorted(wanted - present)
        ]
    )
    return role


def role_delete(*, role: HiringRole) -> None:
    RolePool.objects.filter(organization_id=role.organization_id, role=role).delete()
    role.delete()


# --- follow-ups ---


def follow_up_create(
    *,
    candidate: Candidate,
    due_on: date,
    note: str = "",
    owner: User | None,
    actor: User | None,
    source: str = FollowUp.Source.MANUAL,
) -> FollowUp:
    with transaction.atomic():
        follow_up = FollowUp.objects.create(
            organization_id=candidate.organization_id,
            candidate=candidate,
            due_on=due_on,
            note=note,
            owner=owner,
            created_by=actor,
            source=source,
        )
        activity_record(
            candidate=candidate,
            kind=Activity.Kind.FOLLOW_UP,
            summary=f"Follow-up set for {due_on:%-d %b %Y}" + (f": {note}" if note else ""),
            actor=actor,
            data={"follow_up_id": follow_up.pk, "due_on": due_on.isoformat()},
        )
    return follow_up


@transaction.atomic
def follow_up_complete(*, follow_up: FollowUp, actor: User | None) -> FollowUp:
    if follow_up.completed_at is None:
        follow_up.completed_at = timezone.now()
        follow_up.completed_by = actor
        follow_up.save(update_fields=["completed_at", "completed_by"])
        if follow_up.source == FollowUp.Source.CAMPAIGN:
            # A sequence's task is a call or a message to the candidate: done, it was a contact.
            candidates_mark_contacted(
                candidate_ids=[follow_up.candidate_id], at=follow_up.completed_at
            )
        activity_record(
            candidate=follow_up.candidate,
            kind=Activity.Kind.FOLLOW_UP,
            summary="Follow-up done" + (f": {follow_up.note}" if follow_up.note else ""),
            actor=actor,
            data={"follow_up_id": follow_up.pk, "completed": True},
        )
    return follow_up


# "Later" choices on a follow-up: how many days to push it by.
FOLLOW_UP_SNOOZE_DAYS = {1: "Tomorrow", 7: "In a week", 30: "In a month"}

# How far ahead a follow-up or a role's target date may be set (the forms refuse later dates,
# so the date arithmetic below never nears `date.max`).
YEARS_AHEAD = 5


def latest_date_ahead(*, today: date) -> date:
    """The latest date a follow-up or a role's target date may be: `YEARS_AHEAD` years from
    `today` (28 February when today is 29 February)."""
    year = today.year + YEARS_AHEAD
    if (today.month, today.day) == (2, 29):
        return date(year, 2, 28)
    return today.replace(year=year)


def follow_up_update(
    *, follow_up: FollowUp, due_on: date, note: str, owner: User | None, actor: User | None
) -> FollowUp:
    """Change a follow-up's date, note or owner; a new date goes on the candidate's
    timeline."""
    moved = due_on != follow_up.due_on
    with transaction.atomic():
        follow_up.due_on, follow_up.note, follow_up.owner = due_on, note, owner
        follow_up.save(update_fields=["due_on", "note", "owner"])
        if moved:
            activity_record(
                candidate=follow_up.candidate,
                kind=Activity.Kind.FOLLOW_UP,
                summary=f"Follow-up moved to {due_on:%-d %b %Y}" + (f": {note}" if note else ""),
                actor=actor,
                data={"follow_up_id": follow_up.pk, "due_on": due_on.isoformat()},
            )
    return follow_up


def follow_up_snooze(
    *, follow_up: FollowUp, days: int, today: date, actor: User | None
) -> FollowUp:
    """Push a follow-up `days` later: from today when it is due or overdue, from its date
    when it is still ahead."""
    if days not in FOLLOW_UP_SNOOZE_DAYS:
        raise ValidationError("Choose when to be reminded again.")
    start = max(follow_up.due_on, today)
    # Compared before adding: a date near `date.max` plus the days would overflow.
    if start > latest_date_ahead(today=today) - timedelta(days=days):
        raise ValidationError(
            f"A follow-up can be at most {YEARS_AHEAD} years ahead: change its date instead."
        )
    due_on = start + timedelta(days=days)
    return follow_up_update(
        follow_up=follow_up, due_on=due_on, note=follow_up.note, owner=follow_up.owner, actor=actor
    )


def organization_local_now(*, organization: Organization, now: datetime | None = None):
    # `zone` falls back to UTC for a zone the system no longer knows: one such organisation
    # must not stop the daily run of every other.
    return (now or timezone.now()).astimezone(organization.zone)


def not_now_reactivate(*, organization: Organization, today: date) -> int:
    """Candidates marked "not now — until <date>" come back to active on that date, each with
    a follow-up for their owner due the same day. Set-based. Returns how many came back."""
    with transaction.atomic():
        due = Candidate.objects.select_for_update().filter(
            organization=organization,
            merged_into__isnull=True,
            status=Candidate.Status.NOT_NOW,
            not_now_until__lte=today,
        )
        rows = list(due.values_list("pk", "owner_id", "not_now_until"))
        if not rows:
            return 0
        ids = [row[0] for row in rows]
        Candidate.objects.filter(pk__in=ids).update(
            status=Candidate.Status.ACTIVE, not_now_until=None, updated_at=timezone.now()
        )
        FollowUp.objects.bulk_create(
            [
                FollowUp(
                    organization=organization,
                    candidate_id=pk,
                    owner_id=owner_id,
                    due_on=today,
                    note=f"Back from “not now” (until {until:%-d %b %Y}) — time to reconnect",
                    source=FollowUp.Source.NOT_NOW,
                )
                for pk, owner_id, until in rows
            ]
        )
        activities_record_bulk(
            organization_id=organization.pk,
            candidate_ids=ids,
            kind=Activity.Kind.STATUS_CHANGED,
            summary="Not now → Active (the “not now” date has come); follow-up added",
            data={"from": Candidate.Status.NOT_NOW, "to": Candidate.Status.ACTIVE},
        )
    return len(ids)


def follow_up_digest_recipients(*, organization: Organization, today: date) -> list[User]:
    """Recruiters and admins with follow-ups due today or overdue who have not had today's
    digest yet."""
    already = FollowUpDigest.objects.filter(
        organization=organization, sent_on=today, user=OuterRef("pk")
    )
    due = FollowUp.objects.filter(
        organization=organization,
        owner=OuterRef("pk"),
        completed_at__isnull=True,
        due_on__lte=today,
    )
    return list(
        User.objects.filter(
            is_active=True,
            memberships__organization=organization,
            memberships__role__in=[Role.RECRUITER, Role.ADMIN],
        )
        .filter(Exists(due))
        .exclude(Exists(already))
        .distinct()
    )


def follow_up_digest_send(*, organization: Organization, user: User, today: date) -> bool:
    """Email one recruiter today's digest: what is overdue and what is due today. At most
    once per day (a FollowUpDigest row is the proof). Returns whether a digest went out."""
    from django.conf import settings

    follow_ups = list(
        FollowUp.objects.filter(
            organization=organization,
            owner=user,
            completed_at__isnull=True,
            due_on__lte=today,
            candidate__merged_into__isnull=True,
        )
        .select_related("candidate")
        .order_by("due_on", "id")
    )
    if not follow_ups:
        return False
    with transaction.atomic():
        _digest, created = FollowUpDigest.objects.get_or_create(
            organization=organization,
            user=user,
            sent_on=today,
            defaults={"follow_up_count": len(follow_ups)},
        )
        if not created:
            return False
        base = settings.SITE_URL
        items = [
            {
                "candidate": follow_up.candidate.full_name,
                "title": " at ".join(
                    part
                    for part in (
                        follow_up.candidate.current_title,
                        follow_up.candidate.current_company,
                    )
                    if part
                ),
                "note": follow_up.note,
                "due_on": follow_up.due_on,
                "overdue_days": (today - follow_up.due_on).days,
                "url": base
                + reverse(
                    "candidates:detail",
                    kwargs={"org_slug": organization.slug, "candidate_id": follow_up.candidate_id},
                ),
            }
            for follow_up in follow_ups
        ]
        context = {
            "user_name": user.display_name,
            "organization": organization.name,
            "today": today,
            "overdue": [item for item in items if item["overdue_days"] > 0],
            "due_today": [item for item in items if item["overdue_days"] == 0],
            "count": len(items),
            "follow_ups_url": base
            + reverse("pipelines:follow_ups", kwargs={"org_slug": organization.slug}),
        }
        email, digest_id = user.email, _digest.pk
        transaction.on_commit(
            lambda: _digest_deliver(digest_id=digest_id, to=email, context=context)
        )
    return True


def _digest_deliver(*, digest_id: int, to: str, context: dict) -> None:
    """Send a claimed digest. If the mail server refuses it, the claim is released so that
    the next run (beat, every 15 minutes in the digest hour) tries again: a digest is never
    sent twice and not lost to a passing outage."""
    from crm.emails import send_transactional_email

    try:
        send_transactional_email(
            template="pipelines/email/follow_up_digest", to=[to], context=context
        )
    except Exception:
        logger.exception("Follow-up digest %s could not be sent; it will be retried.", digest_id)
        with scopes_disabled():
            FollowUpDigest.objects.filter(pk=digest_id).delete()


def follow_ups_daily(*, organization: Organization, now: datetime | None = None) -> dict:
    """The daily run for one organisation, from DIGEST_HOUR local time: "not now" candidates
    whose date has come return, then (in the digest hour) each recruiter with something due
    gets a digest."""
    local = organization_local_now(organization=organization, now=now)
    if local.hour < DIGEST_HOUR:
        return {"reactivated": 0, "digests": 0}
    today = local.date()
    reactivated = not_now_reactivate(organization=organization, today=today)
    sent = 0
    # Digests only during the digest hour (beat runs every 15 minutes; FollowUpDigest rows
    # make the repeats harmless), so a follow-up set in the afternoon does not send a second
    # email the same day.
    if local.hour == DIGEST_HOUR:
        for user in follow_up_digest_recipients(organization=organization, today=today):
            sent += follow_up_digest_send(organization=organization, user=user, today=today)
    return {"reactivated": reactivated, "digests": sent}


def organizations_due_for_daily_run(*, now: datetime | None = None) -> list[int]:
    """Organisations where it is at least DIGEST_HOUR local time (the beat task fans out to
    them; the per-organisation run is idempotent, so running every 15 minutes is safe)."""
    with scopes_disabled():
        organizations = list(Organization.objects.only("pk", "time_zone"))
    return [
        organization.pk
        for organization in organizations
        if organization_local_now(organization=organization, now=now).hour >= DIGEST_HOUR
    ]
