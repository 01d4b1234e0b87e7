"""Analytics: append-only engagement facts. Rollups, scores and dashboards come later (see the
roadmap in DESIGN.md); today this app holds the one table every other app writes events to,
through `analytics.services.engagement_event_record` / `engagement_events_record_bulk`."""

from django.db import models
from django_scopes import ScopedManager

from crm.models import Organization


class EngagementEvent(models.Model):
    """One fact about a candidate's engagement. Rows are never updated or deleted by the app.

    Machine events (privacy proxies pre-fetching images, link scanners) are stored with
    ``is_machine`` and the reason, so statistics can leave them out and still show them."""

    class Kind(models.TextChoices):
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        REPLIED = "replied", "Replied"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        RESUBSCRIBED = "resubscribed", "Resubscribed"
        PREFERENCES_UPDATED = "preferences_updated", "Preferences updated"
        SKIPPED = "skipped", "Not sent (guard rail)"
        FAILED = "failed", "Failed"

    # No index of its own: both indexes below (and the source-key constraint) lead with it.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        "campaigns.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    is_machine = models.BooleanField(default=False)
    machine_reason = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Set by writers that may write the same event twice (the buffered tracking flush): a
    # unique key per event makes the second write a no-op.
    source_key = models.CharField(max_length=64, blank=True, default="")

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "campaign", "kind", "occurred_at"]),
            models.Index(fields=["organization", "candidate", "-occurred_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source_key"],
                condition=~models.Q(source_key=""),
                name="engagementevent_source_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"
