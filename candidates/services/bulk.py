"""Bulk actions on a selection of candidates: tag, untag, assign owner, set status, export,
delete, and the actions other apps register (BulkJobAction: "Enroll in a sequence", "Add to
pool").

A selection is either explicit ids (ticked rows) or "all matching" a list query string,
bounded by the highest candidate id when the confirmation was shown (`up_to_id`): candidates
added later are never part of it, however long the job waits in the queue. Small selections
run inline in one transaction; bigger ones become a Job run by the Celery task
`candidates.bulk_action`, which works in batches of ids in id order: one set-based UPDATE per
batch, one timeline entry per changed candidate (activities_record_bulk), then the job's
`processed` and its cursor (the last id done, in job.params["cursor"]) are saved in the same
transaction. A crash therefore leaves exactly the committed batches and an exact `processed`,
and running the task again (the job page's Resume) continues after the cursor. A session
advisory lock per job keeps a second run (a redelivered task) from working alongside the first.

The job's `total` is the number confirmed and never changes; when the candidates found at run
time differ (edited or deleted meanwhile), the result says by how many.
"""

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F, Func, JSONField, Max, QuerySet, Value
from django.http import QueryDict
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate, Job
from candidates.selectors import candidate_selection_problem, candidate_selection_queryset
from candidates.services.activities import activities_record_bulk
from candidates.services.export import (
    export_filename,
    export_headers,
    export_rows,
    export_write_csv,
    export_write_xlsx,
)
from candidates.services.profiles import candidates_delete
from candidates.signals import candidates_changed_in_bulk
from crm.models import Organization, User
from crm.storage import stored_files_delete_on_commit

ACTIONS = {
    "tag": "Add tags",
    "untag": "Remove tags",
    "owner": "Assign owner",
    "status": "Set status",
    "export": "Export",
    "delete": "Delete",
}
ADMIN_ONLY_ACTIONS = {"delete"}


@dataclass(frozen=True)
class BulkJobAction:
    """A bulk action that another app carries out on a selection of candidates, started on
    its own page (a `candidates.panels.BulkDestination`, e.g. campaigns' "Enroll in a
    sequence") and run by this module like the actions above: inline below the inline limit,
    else as a Job in batches, resumable after its cursor. Registered in the app's
    `AppConfig.ready()`, so candidates never imports it.

    `apply(organization_id=…, args=…, ids=…, actor=…)` acts on one batch of candidate ids in
    the caller's transaction and returns how many it changed; doing a batch again must change
    nothing more. When the action can no longer be done (the pool it adds to was archived
    meanwhile) `apply` raises a ValidationError: an inline run passes it to the caller, a job
    stops with its words and keeps the batches done before (Resume tries again).
    `outcome(args, changed, total)` says what the action did, as sentences (a finished job's
    page). Such an action does not change profiles, so it sends no
    `candidates_changed_in_bulk`."""

    action: str
    label: str
    apply: Callable[..., int]
    outcome: Callable[[dict, int, int], list[str]]


BULK_JOB_ACTIONS: dict[str, BulkJobAction] = {}


def bulk_job_action_register(action: BulkJobAction) -> None:
    BULK_JOB_ACTIONS[action.action] = action


def _inline_limit() -> int:
    return getattr(settings, "CANDIDATE_BULK_INLINE_LIMIT", 200)


def bulk_runs_inline(*, total: int) -> bool:
    """Whether a bulk action on `total` candidates runs at once rather than as a job."""
    return total < _inline_limit()


def _export_inline_limit() -> int:
    return getattr(settings, "CANDIDATE_EXPORT_INLINE_LIMIT", 2000)


def _batch_size() -> int:
    return getattr(settings, "CANDIDATE_BULK_BATCH_SIZE", 1000)


# --- selection ---------------------------------------------------------------------------------


def bulk_highest_candidate_id() -> int:
    """The highest candidate id now. Ids come from one sequence for every organisation, so a
    candidate added later has a higher one; reading the maximum is one probe of the primary
    key, and the number says nothing about another organisation's candidates."""
    with scopes_disabled():
        return Candidate.objects.aggregate(highest=Max("id"))["highest"] or 0


def bulk_selection(
    *,
    organization: Organization,
    ids: list[int],
    select_all: bool,
    query: str,
    up_to_id: int | None = None,
) -> dict:
    """What a bulk action acts on, as stored in job.params: {"ids": [...]} (ticked rows) or,
    for "all matching", {"query": "...", "up_to_id": n} or {"ids": [...], "up_to_id": n}.

    `up_to_id` bounds "all matching" to the candidates that existed when the confirmation was
    shown (the page sends it back; None: now), so a candidate added while the job waits, or
    while someone reads the confirmation, is never acted on. A search result is bounded and
    ordered by relevance, so "all matching" a search is frozen into its ids now; a filter-only
    selection is kept as its query and walked in id order.
    """
    if not select_all:
        existing = Candidate.objects.live().filter(organization=organization, id__in=ids)
        return {"ids": sorted(existing.values_list("id", flat=True))}
    if up_to_id is None:
        up_to_id = bulk_highest_candidate_id()
    if (QueryDict(query or "").get("q") or "").strip():
        matches = candidate_selection_queryset(
            organization=organization, query=query, up_to_id=up_to_id
        )
        return {"ids": sorted(matches.values_list("id", flat=True)), "up_to_id": up_to_id}
    return {"query": query or "", "up_to_id": up_to_id}


def bulk_selection_queryset(*, organization: Organization, selection: dict) -> QuerySet:
    """The live candidates of a selection (unordered). A job queued before the bound existed
    has no `up_to_id`: everyone matching now."""
    if "ids" in selection:
        return Candidate.objects.live().filter(organization=organization, id__in=selection["ids"])
    return candidate_selection_queryset(
        organization=organization,
        query=selection.get("query", ""),
        up_to_id=selection.get("up_to_id"),
    ).order_by()


def bulk_selection_count(*, organization: Organization, selection: dict) -> int:
    """The exact number of candidates a selection names (for the confirmation)."""
    if "ids" in selection:
        return len(selection["ids"])
    return bulk_selection_queryset(organization=organization, selection=selection).count()


def bulk_confirmed_difference_text(
    *, confirmed: int | None, found: int, ticked: bool = False
) -> str:
    """In words, for the result message of an action done at once ("Add to pool",
    "Enroll in a sequence"), how the candidates it found differ in number from the `confirmed`
    count its page showed; "" when they do not (or the page did not send its count back).
    `ticked`: the selection was ticked rows, which only deletions and merges can thin out."""
    if confirmed is None or found == confirmed:
        return ""
    if found < confirmed:
        gone = "deleted or merged" if ticked else "deleted or no longer matched"
        return (
            f"Found {found:,} of the {confirmed:,} confirmed: the other {confirmed - found:,} "
            f"had been {gone} in the meantime."
        )
    return (
        f"Found {found:,}, {found - confirmed:,} more than the {confirmed:,} confirmed: profiles "
        "edited after the confirmation had come to match and were included."
    )


# --- one batch ---------------------------------------------------------------------------------


def _update_returning(sql: str, params: list) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def bulk_apply_batch(
    *, organization_id: int, action: str, args: dict, ids: list[int], actor: User | None
) -> int:
    """Apply `action` to the candidates `ids` with one set-based statement and put one
    timeline entry on each candidate that changed (another app's action: its `apply`).
    Returns how many changed."""
    registered = BULK_JOB_ACTIONS.get(action)
    if registered is not None:
        return registered.apply(
            organization_id=organization_id, args=args, ids=list(ids), actor=actor
        )
    if action == "tag":
        tags = args["tags"]
        changed = _update_returning(
            "UPDATE candidates_candidate SET updated_at = now(), tags = tags || ARRAY("
            "  SELECT t FROM unnest(%s::varchar[]) WITH ORDINALITY AS x(t, n)"
            "  WHERE NOT t = ANY(tags) ORDER BY n)"
            " WHERE organization_id = %s AND merged_into_id IS NULL AND id = ANY(%s) AND NOT tags @> %s::varchar[] RETURNING id",
            [tags, organization_id, ids, tags],
        )
        kind, summary = Activity.Kind.TAGGED, "Tags added: " + ", ".join(tags)
    elif action == "untag":
        tags = args["tags"]
        changed = _update_returning(
            "UPDATE candidates_candidate SET updated_at = now(), tags = ARRAY("
            "  SELECT t FROM unnest(tags) WITH ORDINALITY AS x(t, n)"
            "  WHERE NOT t = ANY(%s::varchar[]) ORDER BY n)"
            " WHERE organization_id = %s AND merged_into_id IS NULL AND id = ANY(%s) AND tags && %s::varchar[] RETURNING id",
            [tags, organization_id, ids, tags],
        )
        kind, summary = Activity.Kind.TAGGED, "Tags removed: " + ", ".join(tags)
    elif action == "owner":
        owner_id = args.get("owner_id")
        changed = _update_returning(
            "UPDATE candidates_candidate SET updated_at = now(), owner_id = %s"
            " WHERE organization_id = %s AND merged_into_id IS NULL AND id = ANY(%s) AND owner_id IS DISTINCT FROM %s RETURNING id",
            [owner_id, organization_id, ids, owner_id],
        )
        kind = Activity.Kind.OWNER_CHANGED
        summary = f"Owner set to {args['owner_name']}" if owner_id else "Owner removed"
    elif action == "status":
        status = args["status"]
        # "Not now" carries the date the candidate comes back to active; any other status
        # clears it (as the profile form does).
        until = args.get("not_now_until") if status == Candidate.Status.NOT_NOW else None
        changed = _update_returning(
            "UPDATE candidates_candidate SET updated_at = now(), status = %s,"
            " not_now_until = %s::date"
            " WHERE organization_id = %s AND merged_into_id IS NULL AND id = ANY(%s)"
            " AND (status <> %s OR not_now_until IS DISTINCT FROM %s::date) RETURNING id",
            [status, until, organization_id, ids, status, until],
        )
        kind = Activity.Kind.STATUS_CHANGED
        summary = f"Status set to {Candidate.Status(status).label}"
        if until:
            summary += f" until {date.fromisoformat(until):%-d %b %Y}"
    elif action == "delete":
        # Counted before deleting: the profiles merged into these go with them (merged_into
        # cascades) but were not selected. Stored files go after the commit.
        doomed = list(
            Candidate.objects.select_for_update()
            .filter(organization_id=organization_id, merged_into__isnull=True, id__in=ids)
            .values_list("id", flat=True)
        )
        candidates_delete(candidate_ids=doomed)
        return len(doomed)
    else:
        raise ValueError(f"Unknown bulk action {action!r}")
    if changed:
        activities_record_bulk(
            organization_id=organization_id,
            candidate_ids=changed,
            kind=kind,
            summary=summary,
            actor=actor,
            data={"bulk": True, "action": action},
        )
    return len(changed)


def _batches(queryset: QuerySet, after_id: int, size: int):
    while True:
        ids = list(
            queryset.filter(id__gt=after_id).order_by("id").values_list("id", flat=True)[:size]
        )
        if not ids:
            return
        yield ids
        after_id = ids[-1]


# --- starting and running ----------------------------------------------------------------------


@dataclass
class BulkOutcome:
    job: Job | None = None
    changed: int = 0
    total: int = 0


def bulk_start(
    *,
    organization: Organization,
    actor: User,
    action: str,
    args: dict,
    selection: dict,
    label: str = "",
) -> BulkOutcome:
    """Run a bulk action (one of ACTIONS, or another app's BulkJobAction) inline when the
    selection is small, else queue it as a Job (the caller sends the user to the job's
    progress page); `label`: what the job page calls it (default: the action's name).
    Exports always go through `export_start`."""
    if action == "export" or (action not in ACTIONS and action not in BULK_JOB_ACTIONS):
        raise ValueError(f"Unknown bulk action {action!r}")
    changes_profiles = action in ACTIONS
    total = bulk_selection_count(organization=organization, selection=selection)
    if bulk_runs_inline(total=total):
        queryset = bulk_selection_queryset(organization=organization, selection=selection)
        changed = 0
        acted_on: list[int] = []
        with transaction.atomic():
            for ids in _batches(queryset, 0, _batch_size()):
                acted_on.extend(ids)
                changed += bulk_apply_batch(
                    organization_id=organization.pk,
                    action=action,
                    args=args,
                    ids=ids,
                    actor=actor,
                )
            if changed and changes_profiles:
                candidates_changed_in_bulk.send(
                    sender=Candidate, organization=organization, job=None, candidate_ids=acted_on
                )
        return BulkOutcome(changed=changed, total=total)
    job = _job_create(
        organization=organization,
        actor=actor,
        kind=Job.Kind.BULK,
        total=total,
        params={"action": action, "args": args, "selection": selection, "cursor": 0},
        label=label or (ACTIONS[action] if changes_profiles else BULK_JOB_ACTIONS[action].label),
    )
    return BulkOutcome(job=job, total=total)


def jobs_delete(*, job_ids: list[int]) -> int:
    """Delete jobs of any kind (import, export, bulk) with their row errors, then their
    uploaded and produced files once the deletion has committed. For operators: the app
    itself keeps a job's history."""
    with transaction.atomic(), scopes_disabled():
        jobs = Job.objects.filter(pk__in=job_ids)
        files = [name for pair in jobs.values_list("input_file", "output_file") for name in pair]
        deleted, _ = jobs.delete()
        stored_files_delete_on_commit(files)
    return deleted


def _job_create(*, organization, actor, kind, total, params, label) -> Job:
    from candidates.tasks import bulk_action

    job = Job.objects.create(
        organization=organization,
        kind=kind,
        status=Job.Status.QUEUED,
        created_by=actor,
        total=total,
        params={**params, "queued_at": timezone.now().isoformat()},
        input_name=label,
        result={},
    )
    # Only a head start: with the broker down the error is logged, and beat's backstop
    # (jobs_requeue_waiting) queues the task again.
    transaction.on_commit(
        lambda: bulk_action.delay(organization_id=organization.pk, job_id=job.pk), robust=True
    )
    return job


def export_start(
    *, organization: Organization, actor: User, fmt: str, selection: dict
) -> BulkOutcome:
    """Queue an export of the selection as a Job (its file is downloaded from the job page)."""
    total = bulk_selection_count(organization=organization, selection=selection)
    job = _job_create(
        organization=organization,
        actor=actor,
        kind=Job.Kind.EXPORT,
        total=total,
        params={"format": fmt, "selection": selection, "output_name": export_filename(fmt)},
        label=f"{total} candidates as {fmt.upper()}",
    )
    return BulkOutcome(job=job, total=total)


def export_is_inline(*, organization: Organization, selection: dict) -> bool:
    return bulk_selection_count(organization=organization, selection=selection) <= (
        _export_inline_limit()
    )


# The jobs this module runs, and that the job page's Resume can run again.
RESUMABLE_KINDS = (Job.Kind.BULK, Job.Kind.EXPORT)


def bulk_job_is_stalled(*, job: Job) -> bool:
    """Whether a job says it is running while no worker runs it: the run that set "running"
    holds the job's run lock until it has recorded how it ended, so a running job whose lock
    nobody holds lost its worker without a word (a database connection that broke, or a
    redelivered task that stood aside and then the first worker died)."""
    if job.status != Job.Status.RUNNING or job.kind not in RESUMABLE_KINDS:
        return False
    return not run_lock_held(_run_lock_key(job.pk))


def run_lock_held(key: list[int]) -> bool:
    """Whether some session (a worker's run) holds the advisory run lock `key`, a pair of
    ints as the runs of bulk jobs, exports and imports take it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s::int::oid AND objid = %s::int::oid AND objsubid = 2)",
            key,
        )
        return cursor.fetchone()[0]


def bulk_job_can_resume(*, job: Job) -> bool:
    """A bulk action or export that stopped with an error, or whose worker was lost."""
    failed = job.kind in RESUMABLE_KINDS and job.status == Job.Status.FAILED
    return failed or bulk_job_is_stalled(job=job)


def bulk_job_resume(*, job: Job) -> bool:
    """Queue a stopped bulk action or export again (the job page's Resume). A bulk action
    continues after its cursor, keeping the batches already done; an export writes its file
    again. Only a job that stopped is queued, once however often the button is pressed.
    Returns whether it was queued."""
    from candidates.tasks import bulk_action

    if not bulk_job_can_resume(job=job):
        return False
    queued = Job.objects.filter(pk=job.pk, status=job.status).update(
        status=Job.Status.QUEUED, params=job_params_queued_at(timezone.now())
    )
    if queued:
        organization_id, job_id = job.organization_id, job.pk
        transaction.on_commit(
            lambda: bulk_action.delay(organization_id=organization_id, job_id=job_id),
            robust=True,  # beat's backstop queues it again (jobs_requeue_waiting)
        )
    return bool(queued)


# --- the backstop for a job whose task never came ---------------------------------------------

# A job still queued this long after it was queued, whose run lock nobody holds, has its task
# queued again by beat (`candidates.jobs_requeue_waiting`, every two minutes).
JOB_REQUEUE_AFTER = timedelta(minutes=5)


def job_params_queued_at(now: datetime) -> Func:
    """A job's params with "queued_at" set to `now`, as an UPDATE expression: when its task
    was last queued, from which the backstop measures how long it has waited."""
    return Func(
        F("params"),
        Value({"queued_at": now.isoformat()}, output_field=JSONField()),
        template="(%(expressions)s)",
        arg_joiner=" || ",
        output_field=JSONField(),
    )


def job_queued_since(job: Job) -> datetime:
    """When the job's task was last queued (a job queued before this was recorded: when the
    job was created)."""
    stamp = (job.params or {}).get("queued_at")
    return datetime.fromisoformat(stamp) if stamp else job.created_at


# The kinds of job the backstop queues again (a duplicate scan's run takes no run lock).
REQUEUED_KINDS = (Job.Kind.IMPORT, Job.Kind.BULK, Job.Kind.EXPORT)


def job_waits_too_long(*, job: Job, now: datetime | None = None) -> bool:
    """Whether a queued job of REQUEUED_KINDS has waited longer than JOB_REQUEUE_AFTER for a
    worker (the backstop queues its task again)."""
    if job.status != Job.Status.QUEUED or job.kind not in REQUEUED_KINDS:
        return False
    return (now or timezone.now()) - job_queued_since(job) > JOB_REQUEUE_AFTER


def jobs_requeue_waiting(*, now: datetime | None = None) -> int:
    """Beat's backstop: queue again the task of every import, bulk action and export that has
    been queued for longer than JOB_REQUEUE_AFTER while no run holds its lock. Its task never
    came (the broker was down when it was started, or lost the task) or waits behind a long
    queue; either way a second task is harmless: a run takes the job's advisory run lock and a
    second run stands aside while the first works, and a finished job is left as it is. Each
    job re-queued is stamped again, so one waiting in a long queue gains a task at most once
    per JOB_REQUEUE_AFTER. The task enters the job's organisation (OrganizationTask). Returns
    how many were queued again."""
    from candidates.services.imports import import_run_lock_key
    from candidates.tasks import bulk_action, import_run_task

    now = now or timezone.now()
    runs = {
        Job.Kind.IMPORT: (import_run_task, import_run_lock_key),
        Job.Kind.BULK: (bulk_action, _run_lock_key),
        Job.Kind.EXPORT: (bulk_action, _run_lock_key),
    }
    with scopes_disabled():
        queued = Job.objects.filter(status=Job.Status.QUEUED, kind__in=list(runs)).only(
            "pk", "organization_id", "kind", "status", "params", "created_at"
        )
        waiting = [job for job in queued if job_waits_too_long(job=job, now=now)]
    requeued = 0
    for job in waiting:
        task, lock_key = runs[job.kind]
        if run_lock_held(lock_key(job.pk)):
            continue  # a run has just taken it up
        with transaction.atomic():
            with scopes_disabled():
                stamped = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
                    params=job_params_queued_at(now)
                )
            if stamped:
                transaction.on_commit(
                    lambda task=task, organization_id=job.organization_id, job_id=job.pk: (
                        task.delay(organization_id=organization_id, job_id=job_id)
                    ),
                    robust=True,
                )
        requeued += stamped
    return requeued


# The first key of the session lock that keeps two runs of one bulk job apart (imports have
# their own, candidates.services.imports._RUN_LOCK_NAMESPACE).
_RUN_LOCK_NAMESPACE = 0x1B40


def _run_lock_key(job_id: int) -> list[int]:
    return [_RUN_LOCK_NAMESPACE, job_id & 0x7FFFFFFF]


@contextlib.contextmanager
def _run_lock(job_id: int) -> Iterator[bool]:
    """Whether this is the only run of the job: with Redis' visibility timeout (an hour) a job
    that runs longer is delivered to a second worker while the first is still working. Held on
    this connection until the run ends, and released by the database if the worker dies."""
    key = _run_lock_key(job_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


class SelectionNoLongerValid(Exception):
    """A job's "all matching" whose filter no longer holds (an owner who left, a choice or a
    custom field removed since the confirmation): it would now find more than was confirmed —
    everyone, when that was its only filter — so nothing more is done."""


def _check_selection(job: Job) -> None:
    selection = job.params["selection"]
    if "query" not in selection:
        return
    problem = candidate_selection_problem(
        organization=job.organization, query=selection.get("query", "")
    )
    if problem:
        raise SelectionNoLongerValid(problem)


class _Superseded(Exception):
    """Another run of the job committed a batch this run was about to do."""


def bulk_job_run(*, job_id: int) -> Job:
    """Run (or resume) a bulk-action or export job. Called by the Celery task inside the
    organisation's scope. A run started while another run of the job is active leaves the job
    to it and returns at once."""
    with _run_lock(job_id) as alone:
        job = Job.objects.select_related("organization", "created_by").get(pk=job_id)
        if job.status == Job.Status.DONE or not alone:
            return job
        job.status = Job.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.finished_at = None
        job.error = ""
        job.save(update_fields=["status", "started_at", "finished_at", "error"])
        try:
            _check_selection(job)
            if job.kind == Job.Kind.EXPORT:
                _export_run(job)
            else:
                _bulk_run(job)
        except _Superseded:
            return job
        except SelectionNoLongerValid as error:
            done = "no file was made" if job.kind == Job.Kind.EXPORT else "nothing more was changed"
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.FAILED,
                error=(
                    f"The selection's filter no longer holds ({error}), so it would now find "
                    f"more candidates than were confirmed: {done}. Choose them again on the "
                    "list."
                ),
                finished_at=timezone.now(),
            )
            job.refresh_from_db()
            return job
        except ValidationError as error:  # a registered action refused, in its own words
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.FAILED,
                error=" ".join(error.messages),
                finished_at=timezone.now(),
            )
            job.refresh_from_db()
            return job
        except Exception as error:
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.FAILED,
                error=_stopped_message(job, error),
                finished_at=timezone.now(),
            )
            raise
        job.status = Job.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        return job


def _stopped_message(job: Job, error: Exception) -> str:
    """What stopped the job, as a fact; the job page adds what Resume does for those who may
    resume it."""
    if job.kind == Job.Kind.EXPORT:
        return f"The export stopped ({error.__class__.__name__}); no file was made."
    return f"The job stopped ({error.__class__.__name__})."


def _confirmed_difference(*, total: int, found: int) -> dict:
    """How the candidates a job found differ in number from the confirmed `total`: some were
    deleted or no longer matched when the job reached them, or more matched (edited since)."""
    if found < total:
        return {"no_longer_matching": total - found}
    if found > total:
        return {"more_than_confirmed": found - total}
    return {}


def _bulk_run(job: Job) -> None:
    organization = job.organization
    params = job.params
    queryset = bulk_selection_queryset(organization=organization, selection=params["selection"])
    changed = int((job.result or {}).get("changed", 0))
    cursor = int(params.get("cursor") or 0)
    for ids in _batches(queryset, cursor, _batch_size()):
        with transaction.atomic():
            # Under the job's row lock: a different cursor means another run did this batch.
            stored = Job.objects.select_for_update().values_list("params", flat=True).get(pk=job.pk)
            if int(stored.get("cursor") or 0) != cursor:
                raise _Superseded
            changed += bulk_apply_batch(
                organization_id=organization.pk,
                action=params["action"],
                args=params["args"],
                ids=ids,
                actor=job.created_by,
            )
            cursor = ids[-1]
            job.processed += len(ids)
            job.params["cursor"] = cursor
            job.result = {"changed": changed, "unchanged": max(0, job.processed - changed)}
            job.save(update_fields=["processed", "params", "result"])
    job.result = {
        "changed": changed,
        "unchanged": max(0, job.processed - changed),
        **_confirmed_difference(total=job.total, found=job.processed),
    }
    job.save(update_fields=["result"])
    if changed and params["action"] in ACTIONS:  # another app's action changes no profile
        candidates_changed_in_bulk.send(sender=Candidate, organization=organization, job=job)


def _export_run(job: Job) -> None:
    from candidates.services.custom_fields import custom_fields_active

    organization = job.organization
    fmt = job.params.get("format", "csv")
    queryset = bulk_selection_queryset(organization=organization, selection=job.params["selection"])
    custom_fields = custom_fields_active(organization=organization)

    def progress(count: int) -> None:
        Job.objects.filter(pk=job.pk).update(processed=count)

    rows = export_rows(queryset, custom_fields, on_progress=progress)
    headers = export_headers(custom_fields)
    with tempfile.TemporaryFile() as handle:
        if fmt == "xlsx":
            export_write_xlsx(handle, headers, rows)
        else:
            text = _TextWriter(handle)
            export_write_csv(text, headers, rows)
        handle.seek(0)
        job.refresh_from_db(fields=["processed"])
        job.output_file.save(job.params["output_name"], File(handle), save=False)
    job.result = {
        "rows": job.processed,
        "format": fmt.upper(),
        **_confirmed_difference(total=job.total, found=job.processed),
    }
    job.save(update_fields=["output_file", "result"])


class _TextWriter:
    """Write text to a binary file as UTF-8."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, text: str) -> None:
        self.handle.write(text.encode("utf-8"))
