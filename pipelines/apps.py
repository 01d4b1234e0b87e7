from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Talent pools and pipelines"

    def ready(self) -> None:
        # A member who leaves hands their pools (private ones included: no one else could see
        # them) and their open follow-ups to a colleague (crm/handover.py).
        from django.db.models import Q

        from crm.handover import Handover, handover_register

        handover_register(
            Handover("pipelines.Pool", "owner", "talent pools they own", "talent pool they own")
        )
        handover_register(
            Handover(
                "pipelines.FollowUp",
                "owner",
                "open follow-ups",
                "open follow-up",
                only=Q(completed_at__isnull=True),
            )
        )

        # Candidate merges carry pool memberships and follow-ups to the primary profile.
        from candidates.services.merge import MERGE_HOOKS, MERGE_MOVERS, MergeHook, MergeMover

        for mover in (
            MergeMover("pipelines.PoolMembership", "candidate", unique_with=("pool",)),
            MergeMover("pipelines.FollowUp", "candidate"),
        ):
            if mover not in MERGE_MOVERS:
                MERGE_MOVERS.append(mover)
        # Where both profiles were in the same pool, the secondary's card leaves the board.
        from pipelines.merging import pool_memberships_merge, pool_memberships_unmerge

        if not any(hook.name == "pipelines.pool_memberships" for hook in MERGE_HOOKS):
            MERGE_HOOKS.append(
                MergeHook(
                    "pipelines.pool_memberships", pool_memberships_merge, pool_memberships_unmerge
                )
            )

        from candidates.panels import (
            BulkDestination,
            bulk_destination_register,
            profile_panel_register,
        )

        bulk_destination_register(
            BulkDestination(action="pool_add", label="Add to pool…", url_name="pipelines:pool_add")
        )
        # …which runs as the list's own bulk actions do: at once for a few candidates, as a
        # job in batches with a progress page for many (candidates.services.bulk).
        from candidates.services.bulk import BulkJobAction, bulk_job_action_register
        from pipelines.services import POOL_ADD_ACTION, pool_add_outcome, pool_add_selection

        bulk_job_action_register(
            BulkJobAction(
                action=POOL_ADD_ACTION,
                label="Add to pool",
                apply=pool_add_selection,
                outcome=pool_add_outcome,
            )
        )

        from candidates.panels import saved_search_editing_panel_register

        saved_search_editing_panel_register("pipelines/includes/saved_search_pools.html")
        profile_panel_register("pipelines/includes/candidate_pools.html")
        profile_panel_register("pipelines/includes/candidate_follow_ups.html")

        # A colleague's "Only me" pool: its name and stages stay out of the profile's timeline.
        from candidates.panels import TimelineRedaction, timeline_redaction_register
        from pipelines.selectors import activity_pool_condition, activity_pool_summary

        timeline_redaction_register(
            TimelineRedaction(
                "pipelines.private_pools", activity_pool_condition, activity_pool_summary
            )
        )

        from crm.home import home_panel_register

        home_panel_register("pipelines/includes/home_panel.html")

        from pipelines import receivers  # noqa: F401  (connects the candidate signals)
