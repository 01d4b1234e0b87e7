from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # A member who leaves hands the campaigns sent in their name to a colleague, so that
        # candidates' replies reach someone still here (crm/handover.py).
        from crm.handover import Handover, handover_register

        handover_register(
            Handover(
                "campaigns.Campaign",
                "sender",
                "campaigns sent in their name",
                "campaign sent in their name",
            )
        )

        # Merging two profiles carries the secondary's campaign history to the primary (and
        # undo carries it back). A row whose twin the primary already has — an enrollment or
        # messages in the same campaign, a preferences row — stays with the secondary.
        from candidates.services.merge import MERGE_MOVERS, MergeMover

        for mover in (
            MergeMover("campaigns.Enrollment", "candidate", unique_with=("campaign",)),
            MergeMover("campaigns.Message", "candidate", unique_with=("campaign",)),
            MergeMover("campaigns.Consent", "candidate"),
            MergeMover("campaigns.InboundEmail", "candidate"),
            MergeMover(
                "campaigns.CandidateEmailPreference", "candidate", unique_with=("organization",)
            ),
        ):
            if mover not in MERGE_MOVERS:
                MERGE_MOVERS.append(mover)

        # Where both profiles had a preferences row, the primary keeps the stricter choice of
        # the two (an unsubscribe on either profile still holds after the merge; an undo
        # never loosens one). What stays with the secondary in a campaign the primary is in
        # too stops, so that the person does not get that campaign twice.
        from campaigns.merging import (
            email_preferences_merge,
            email_preferences_unmerge,
            secondary_campaigns_resume,
            secondary_campaigns_stop,
        )
        from candidates.services.merge import MERGE_HOOKS, MergeHook

        for hook in (
            MergeHook(
                "campaigns.email_preferences", email_preferences_merge, email_preferences_unmerge
            ),
            MergeHook(
                "campaigns.secondary_campaigns",
                secondary_campaigns_stop,
                secondary_campaigns_resume,
            ),
        ):
            if not any(registered.name == hook.name for registered in MERGE_HOOKS):
                MERGE_HOOKS.append(hook)

        from candidates.panels import (
            BulkDestination,
            bulk_destination_register,
            profile_panel_register,
        )

        bulk_destination_register(
            BulkDestination(
                action="sequence_enroll",
                label="Enroll in a sequence…",
                url_name="campaigns:enroll",
            )
        )
        # …which runs as the list's own bulk actions do: at once for a few candidates, as a
        # job in batches with a progress page for many (candidates.services.bulk).
        from campaigns.services.sequences import (
            ENROLL_ACTION,
            sequence_enroll_outcome,
            sequence_enroll_selection,
        )
        from candidates.services.bulk import BulkJobAction, bulk_job_action_register

        bulk_job_action_register(
            BulkJobAction(
                action=ENROLL_ACTION,
                label="Enroll in a sequence",
                apply=sequence_enroll_selection,
                outcome=sequence_enroll_outcome,
            )
        )

        # The candidate profile's "Sent emails" card (with consent and double opt-in).
        profile_panel_register("campaigns/includes/profile_sent_emails.html")

        # "Joined … (entered the pool “…”)" names a colleague's "Only me" pool to nobody else.
        from campaigns.services.sequences import (
            enrollment_private_pool_condition,
            enrollment_private_pool_summary,
        )
        from candidates.panels import TimelineRedaction, timeline_redaction_register

        timeline_redaction_register(
            TimelineRedaction(
                "campaigns.auto_join_private_pools",
                enrollment_private_pool_condition,
                enrollment_private_pool_summary,
            )
        )

        from crm.home import home_panel_register

        home_panel_register("campaigns/includes/home_panel.html")

        from campaigns import (  # noqa: F401 — anymail's signals, deploy checks
            checks,
            receivers,
            sequence_receivers,
        )
