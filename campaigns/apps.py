from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
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

        # The candidate profile's "Sent emails" card (with consent and double opt-in).
        profile_panel_register("campaigns/includes/profile_sent_emails.html")

        from crm.home import home_panel_register

        home_panel_register("campaigns/includes/home_panel.html")

        from campaigns import (  # noqa: F401 — anymail's signals, deploy checks
            checks,
            receivers,
            sequence_receivers,
        )
