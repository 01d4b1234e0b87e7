"""pipelines' signals → campaign sequences. Connected in CampaignsConfig.ready(); pipelines
never imports campaigns."""

from django.dispatch import receiver

from pipelines.signals import candidates_entered_pool, candidates_moved_to_stage


@receiver(candidates_entered_pool, dispatch_uid="campaigns.sequences_auto_join")
def on_candidates_entered_pool(sender, *, pool, candidate_ids, **kwargs) -> None:
    from campaigns.services.sequences import pool_entries_enqueue

    pool_entries_enqueue(pool=pool, candidate_ids=candidate_ids)


@receiver(candidates_moved_to_stage, dispatch_uid="campaigns.sequences_stage_outcome")
def on_candidates_moved_to_stage(sender, *, pool, stage, candidate_ids, **kwargs) -> None:
    from campaigns.services.sequences import stage_outcome_stop

    stage_outcome_stop(pool=pool, stage=stage, candidate_ids=candidate_ids)
