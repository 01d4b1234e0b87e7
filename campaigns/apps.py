from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from candidates.panels import profile_panel_register

        # The candidate profile's "Sent emails" card (with consent and double opt-in).
        profile_panel_register("campaigns/includes/profile_sent_emails.html")

        from crm.home import home_panel_register

        home_panel_register("campaigns/includes/home_panel.html")

        from campaigns import (  # noqa: F401 — anymail's signals, deploy checks
            checks,
            receivers,
            sequence_receivers,
        )
