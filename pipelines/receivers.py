"""Smart pools follow candidates as they change: one profile at once (event-driven), many
after an import or a bulk action (a refresh of the organisation's smart pools), and their rule
when its saved search is changed."""

from django.db import transaction
from django.dispatch import receiver

from candidates.signals import candidate_changed, candidates_changed_in_bulk, saved_search_changed


@receiver(candidate_changed, dispatch_uid="pipelines.smart_pools_follow_candidate")
def smart_pools_follow_candidate(sender, *, candidate, created, **kwargs) -> None:
    from pipelines.models import Pool
    from pipelines.tasks import smart_pools_reevaluate_candidate_task

    if not Pool.objects.filter(
        organization_id=candidate.organization_id, kind=Pool.Kind.SMART
    ).exists():
        return
    organization_id, candidate_id = candidate.organization_id, candidate.pk
    transaction.on_commit(
        lambda: smart_pools_reevaluate_candidate_task.delay(
            organization_id=organization_id, candidate_id=candidate_id
        )
    )


# Up to this many named candidates are re-evaluated one by one (a few indexed statements
# each); beyond it, or when the candidates are not named, every smart pool is re-materialised.
REEVALUATE_ONE_BY_ONE_UP_TO = 200


@receiver(candidates_changed_in_bulk, dispatch_uid="pipelines.smart_pools_follow_bulk")
def smart_pools_follow_bulk(sender, *, organization, candidate_ids=None, **kwargs) -> None:
    from pipelines.models import Pool
    from pipelines.tasks import smart_pool_refresh_task, smart_pools_reevaluate_candidate_task

    if not Pool.objects.filter(organization=organization, kind=Pool.Kind.SMART).exists():
        return
    if candidate_ids is not None and len(candidate_ids) <= REEVALUATE_ONE_BY_ONE_UP_TO:
        for candidate_id in candidate_ids:
            transaction.on_commit(
                lambda candidate_id=candidate_id: smart_pools_reevaluate_candidate_task.delay(
                    organization_id=organization.pk, candidate_id=candidate_id
                )
            )
        return

    pool_ids = list(
        Pool.objects.filter(
            organization=organization, kind=Pool.Kind.SMART, saved_search__isnull=False
        ).values_list("pk", flat=True)
    )
    for pool_id in pool_ids:
        transaction.on_commit(
            lambda pool_id=pool_id: smart_pool_refresh_task.delay(
                organization_id=organization.pk, pool_id=pool_id
            )
        )


@receiver(saved_search_changed, dispatch_uid="pipelines.smart_pools_follow_rule")
def smart_pools_follow_rule(sender, *, saved_search, **kwargs) -> None:
    """A saved search's filters changed: the smart pools it defines are re-materialised now
    rather than at the next hourly refresh."""
    from pipelines.models import Pool
    from pipelines.services import pool_schedule_refresh

    for pool in Pool.objects.filter(
        organization_id=saved_search.organization_id,
        kind=Pool.Kind.SMART,
        saved_search=saved_search,
    ):
        pool_schedule_refresh(pool=pool)
