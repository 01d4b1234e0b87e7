from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from campaigns import (  # noqa: F401 — anymail's signals, deploy checks
            checks,
            receivers,
            sequence_receivers,
        )
