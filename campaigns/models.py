"""Campaigns: email templates, campaigns and their steps, enrollments, the outbox (Message),
suppressions and candidates' email preferences.

Every model is tenant-owned: an `organization` FK and a django-scopes ScopedManager; unique
constraints and composite indexes start with `organization`. The two exceptions are marked:
the dispatcher's and sweeper's partial indexes, which serve a scan across all organisations,
and the globally unique RFC 5322 Message-ID, which inbound replies are matched by.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django_scopes import ScopedManager

from crm.models import Organization


class Topic(models.TextChoices):
    """What an email is about; candidates opt out of topics in the preference centre.
    (The issue asks for an admin-editable list later: a Topic model keyed by these values.)"""

    JOBS = "jobs", "Job opportunities"
    EVENTS = "events", "Events"
    NEWSLETTER = "newsletter", "Newsletter"


class EmailSettings(models.Model):
    """Per-organisation sending settings (one row, created on first use)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="email_settings"
    )
    track_opens = models.BooleanField(
        default=True, help_text="Add an invisible image to count opens. Switch off for privacy."
    )
    track_clicks = models.BooleanField(default=True)
    messages_per_minute = models.PositiveIntegerField(
        default=30000, help_text="Across all workers; throttled emails wait and go out later."
    )

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"Email settings of {self.organization}"


class EmailTemplate(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=150)
    subject = models.CharField(max_length=255)
    preheader = models.CharField(
        max_length=255, blank=True, help_text="The preview line inboxes show after the subject."
    )
    body_markdown = models.TextField("body")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("organization", Lower("name"), name="emailtemplate_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BROADCAST = "broadcast", "Broadcast"
        SEQUENCE = "sequence", "Sequence"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=150)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BROADCAST)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    topic = models.CharField(max_length=20, choices=Topic.choices, default=Topic.JOBS)
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The audience: everyone found by any of `saved_searches`, minus everyone found by any of
    # `excluded_saved_searches`. EXTENSION POINT (pipelines app): `pools` and `excluded_pools`
    # ManyToManyFields to pipelines.Pool are added by a later migration and unioned in
    # campaigns.services.audience.audience_queryset — nothing else changes.
    saved_searches = models.ManyToManyField(
        "candidates.SavedSearch", blank=True, related_name="campaigns"
    )
    excluded_saved_searches = models.ManyToManyField(
        "candidates.SavedSearch", blank=True, related_name="excluded_from_campaigns"
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The recruiter replies go to.",
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "status", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class Step(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        TASK = "task", "Task for the recruiter"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EMAIL)
    delay = models.DurationField(
        default=timedelta(0), help_text="Wait after the previous step (after launch for the first)."
    )
    subject = models.CharField(max_length=255, blank=True)
    preheader = models.CharField(max_length=255, blank=True)
    body_markdown = models.TextField("body", blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "campaign", "position"], name="step_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Step {self.position} of {self.campaign_id}"


class Enrollment(models.Model):
    """One candidate's way through a campaign. The dispatcher picks up active enrollments whose
    `next_run_at` has come, creates the Message of `current_step` and moves on."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        STOPPED = "stopped", "Stopped"

    class StopReason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        SUPPRESSED = "suppressed", "Suppressed address"
        DO_NOT_CONTACT = "do_not_contact", "Do not contact"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        REPLIED = "replied", "Replied"
        REMOVED = "removed", "Removed by a recruiter"
        CANCELLED = "cancelled", "Campaign cancelled"
        NO_EMAIL = "no_email", "No email address"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="enrollments"
    )
    current_step = models.ForeignKey(
        Step, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    stop_reason = models.CharField(max_length=20, choices=StopReason.choices, blank=True)
    enrolled_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "campaign", "candidate"], name="enrollment_unique"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "campaign", "status"]),
            models.Index(fields=["organization", "candidate"]),
            # The dispatcher's scan across all organisations: only active rows are indexed.
            models.Index(
                fields=["next_run_at"],
                condition=Q(status="active"),
                name="enrollment_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} in {self.campaign_id} ({self.status})"


class Message(models.Model):
    """The outbox row: the truth about one email to one person (see DESIGN.md, "the outbox").

    Rendered once, by the dispatcher; sent (and re-sent after a crash) with the same
    Message-ID. Unique per (organization, enrollment, step): scheduling twice never sends twice.
    Test sends ("send a test to me") have no enrollment and no candidate (and from the template
    editor, no campaign or step either); the guard rails do not apply to them.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        BOUNCED = "bounced", "Bounced"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not sent"

    class SkipReason(models.TextChoices):
        SUPPRESSED = "suppressed", "Suppressed address"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        DO_NOT_CONTACT = "do_not_contact", "Do not contact"
        TOPIC_OPTED_OUT = "topic_opted_out", "Opted out of this topic"
        PAUSED = "paused", "Paused emails"
        NO_EMAIL = "no_email", "No email address"
        CAMPAIGN_CANCELLED = "campaign_cancelled", "Campaign cancelled"
        ENROLLMENT_STOPPED = "enrollment_stopped", "Removed from the campaign"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    # Empty only for test sends from the template editor.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    step = models.ForeignKey(
        Step, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    candidate = models.ForeignKey(
        "candidates.Candidate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaign_messages",
    )
    is_test = models.BooleanField(default=False)
    to_email = models.EmailField(max_length=254)
    from_email = models.CharField(max_length=320)
    reply_to = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998)
    html = models.TextField()
    text = models.TextField()
    headers = models.JSONField(default=dict)
    # Our RFC 5322 Message-ID, generated once at render time; a re-send keeps it.
    message_id = models.CharField(max_length=255)
    # The links the email contained, in order: click tracking redirects only to these.
    links = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True)
    # First human engagement (machine events are only in analytics.EngagementEvent).
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "enrollment", "step"], name="message_once_per_step"
            ),
            # Global: Message-IDs are unique by construction and replies are matched by them.
            models.UniqueConstraint(fields=["message_id"], name="message_message_id_unique"),
        ]
        indexes = [
            models.Index(fields=["organization", "campaign", "step", "status"]),
            models.Index(fields=["organization", "campaign", "-created_at", "-id"]),
            models.Index(fields=["organization", "candidate", "-created_at"]),
            # The sweeper's scans across all organisations (queued retries, lost claims).
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="queued"), name="message_queued"
            ),
            models.Index(
                fields=["claimed_at"], condition=Q(status="sending"), name="message_sending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email} ({self.status})"


class Suppression(models.Model):
    """An address that campaign email never goes to (transactional email is not affected)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Spam complaint"
        MANUAL = "manual", "Added by a recruiter"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    email = models.EmailField(max_length=254, help_text="Stored lower-cased.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="suppression_unique")
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class CandidateEmailPreference(models.Model):
    """What a candidate chose in the preference centre. No row means the defaults: every topic,
    no pause, subscribed."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate = models.OneToOneField(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="email_preference"
    )
    opted_out_topics = ArrayField(
        models.CharField(max_length=20, choices=Topic.choices), default=list, blank=True
    )
    paused_until = models.DateField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "candidate"])]

    def __str__(self) -> str:
        return f"Preferences of {self.candidate_id}"
