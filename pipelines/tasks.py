"""Celery tasks of the pipelines app: thin wrappers that load by id and call a service."""

from crm.celery import OrganizationTask, app


@app.task(base=OrganizationTask, name="pipelines.smart_pool_refresh", ignore_result=True)
def smart_pool_refresh_task(*, organization_id: int, pool_id: int) -> dict | None:
    from pipelines.models import Pool
    from pipelines.services import smart_pool_refresh

    pool = (
        Pool.objects.select_related("saved_search")
        .filter(organization_id=organization_id, pk=pool_id)
        .first()
    )
    if pool is None:
        return None
    entered, left = smart_pool_refresh(pool=pool)
    return {"entered": entered, "left": left}


@app.task(name="pipelines.smart_pools_refresh_all", ignore_result=True)
def smart_pools_refresh_all() -> int:
    """Beat: re-materialise every smart pool (catches rules that depend on time, like
    "added in the last 30 days", and saved searches edited since)."""
    from django_scopes import scopes_disabled

    from pipelines.models import Pool

    with scopes_disabled():
        pools = list(
            Pool.objects.filter(
                kind=Pool.Kind.SMART, saved_search__isnull=False, archived_at__isnull=True
            ).values_list("organization_id", "pk")
        )
    for organization_id, pool_id in pools:
        smart_pool_refresh_task.delay(organization_id=organization_id, pool_id=pool_id)
    return len(pools)


@app.task(
    base=OrganizationTask, name="pipelines.smart_pools_reevaluate_candidate", ignore_result=True
)
def smart_pools_reevaluate_candidate_task(*, organization_id: int, candidate_id: int) -> None:
    from candidates.models import Candidate
    from pipelines.services import smart_pools_reevaluate_candidate

    candidate = Candidate.objects.filter(organization_id=organization_id, pk=candidate_id).first()
    if candidate is not None:
        smart_pools_reevaluate_candidate(candidate=candidate)


@app.task(name="pipelines.follow_ups_dispatch", ignore_result=True)
def follow_ups_dispatch() -> int:
    """Beat, every 15 minutes: fan out the daily follow-up run to organisations where it is
    the digest hour or later (each run is idempotent)."""
    from pipelines.services import organizations_due_for_daily_run

    organization_ids = organizations_due_for_daily_run()
    for organization_id in organization_ids:
        follow_ups_daily_task.delay(organization_id=organization_id)
    return len(organization_ids)


@app.task(base=OrganizationTask, name="pipelines.follow_ups_daily", ignore_result=True)
def follow_ups_daily_task(*, organization_id: int) -> dict:
    from crm.models import Organization
    from pipelines.services import follow_ups_daily

    organization = Organization.objects.get(pk=organization_id)
    return follow_ups_daily(organization=organization)
