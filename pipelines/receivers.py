"""Smart pools follow candidates as they change: one profile at once (event-driven), many
after an import or a bulk action (a refresh of the organisation's smart pools)."""

from django.db import transaction
from django.dispatch import receiver

from candidates.signals import candidate_changed, candidates_changed_in_bulk


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


@receiver(candidates_changed_in_bulk, dispatch_uid="pipelines.smart_pools_follow_bulk")
def smart_pools_follow_bulk(sender, *, organization, **kwargs) -> None:
    from pipelines.models import Pool
    from pipelines.tasks import smart_pool_refresh_task

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
