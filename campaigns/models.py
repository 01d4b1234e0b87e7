"""Campaigns: email templates, campaigns and their steps, enrollments, the outbox (Message),
suppressions and candidates' email preferences.

Every model is tenant-owned: an `organization` FK and a django-scopes ScopedManager; unique
constraints and composite indexes start with `organization`. The exceptions are marked:
the dispatcher's and sweeper's partial indexes, which serve a scan across all organisations,
the globally unique RFC 5322 Message-ID, which inbound replies are matched by, and a verified
sending domain, which belongs to one organisation of the installation.
"""

import secrets
from datetime import date, time, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django_scopes import ScopedManager

from crm.models import Organization


class DefaultTopic(models.TextChoices):
    """The topics every organisation starts with (admins rename, add and archive them in
    Settings → Email topics). Campaigns and preferences store a topic's `key`."""

    JOBS = "jobs", "Job opportunities"
    EVENTS = "events", "Events"
    NEWSLETTER = "newsletter", "Newsletter"


class OrganizationChoice(models.Model):
    """An entry in a list each organisation edits for itself (email topics, role families).

    `key` never changes once created (campaigns and candidates' choices store it), so a rename
    keeps everyone's choices; archiving hides an entry from new choices and keeps the choices
    already made. The constraints are named after the concrete model (`topic_key_unique`…)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    key = models.SlugField(max_length=20)
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        abstract = True
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="%(class)s_key_unique"),
            models.UniqueConstraint("organization", Lower("name"), name="%(class)s_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Topic(OrganizationChoice):
    """What an email is about; candidates opt out of topics in the preference centre.

    Archiving hides a topic from new campaigns and from the preference centre, and keeps
    opt-outs in force for campaigns that still use it."""

    description = models.CharField(max_length=300, blank=True)


class DefaultRoleFamily(models.TextChoices):
    """The role families every organisation starts with (admins rename, add and archive them in
    Settings → Role families). Candidates' interests and campaigns' targeting store a family's
    `key`."""

    ENGINEERING = "engineering", "Engineering"
    DATA = "data", "Data & analytics"
    PRODUCT = "product", "Product"
    DESIGN = "design", "Design"
    SALES = "sales", "Sales"
    MARKETING = "marketing", "Marketing"
    OPERATIONS = "operations", "Operations"
    PEOPLE = "people", "People & HR"
    FINANCE = "finance", "Finance"


class RoleFamily(OrganizationChoice):
    """A kind of role candidates say they are interested in (preference centre), and that
    campaigns target ("only candidates interested in …").

    Archiving hides a family from the preference centre and from new campaigns, and keeps the
    choices already made."""


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
    # Organisation-wide frequency cap: at most `frequency_cap_messages` campaign emails per
    # candidate in any `frequency_cap_days` days (0 switches it off). Over-cap emails wait.
    frequency_cap_messages = models.PositiveSmallIntegerField(
        "at most this many campaign emails",
        default=0,
        help_text="Per candidate, across all campaigns. 0 switches the cap off.",
    )
    frequency_cap_days = models.PositiveSmallIntegerField(
        "in this many days", default=7, help_text="Emails over the cap wait; they are not lost."
    )
    consent_required = models.BooleanField(
        "require recorded consent",
        default=False,
        help_text="Send campaign email only to candidates who gave consent (e.g. double opt-in).",
    )
    # Per recruiter (the campaign's sender, whom replies go to) and day in the organisation's
    # time zone; 0 = no cap. A new sending domain's warm-up is on SendingDomain.
    sender_daily_cap = models.PositiveIntegerField(
        "emails per recruiter per day",
        default=0,
        help_text=(
            "Campaign emails each recruiter (a campaign's sender) may send per day. "
            "0 means no daily cap. Emails over the cap go out the next day."
        ),
    )

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"Email settings of {self.organization}"


def new_verification_token() -> str:
    """A sending domain's secret for its DNS TXT record (32 hex characters)."""
    return secrets.token_hex(16)


class SendingDomain(models.Model):
    """A domain campaign email leaves from (the domain of the From address).

    **Verification**: on an installation shared by several organisations, an organisation
    proves it controls a domain before campaign email leaves from it: it publishes
    `rapport-verification=<verification_token>` in a DNS TXT record at `_rapport.<domain>`
    and an admin presses "Check now" (services/domains.py). `verified_at` is set once the
    record is found; a domain is verified by one organisation at most (the one exception to
    "unique constraints start with organization": this one is across tenants on purpose).

    Mailbox providers judge a domain by its history: a new one that suddenly sends thousands
    of emails lands in spam. An optional **warm-up** limits how many campaign emails leave
    from the domain each day, across every recruiter and worker: `warmup_first_day` on the
    first day, growing by `warmup_growth_percent` every day, until the ramp reaches
    `warmup_target_per_day` — from then on the domain is warmed up and the ramp no longer
    applies. Emails over the day's allowance wait for the next day (services/guards.py)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    domain = models.CharField(max_length=255, help_text="Stored lower-cased.")
    warmup_started_on = models.DateField(
        "warm-up started on",
        null=True,
        blank=True,
        help_text="Empty: no warm-up (an established domain).",
    )
    warmup_first_day = models.PositiveIntegerField(
        "emails on the first day", default=50, help_text="Across all recruiters."
    )
    warmup_growth_percent = models.PositiveSmallIntegerField(
        "daily increase (%)",
        default=100,
        help_text="How much more each day may send than the day before (100 = double).",
    )
    warmup_target_per_day = models.PositiveIntegerField(
        "warmed up at (emails per day)",
        default=5000,
        help_text="When the ramp reaches this many emails a day, the warm-up is over.",
    )
    verification_token = models.CharField(max_length=64, default=new_verification_token)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The last "Check now": when, and why it failed ("" when it succeeded or never ran).
    verification_checked_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain"], name="sendingdomain_domain_unique"
            ),
            # Across organisations: a domain sends for the one organisation that verified it.
            models.UniqueConstraint(
                fields=["domain"],
                condition=Q(verified_at__isnull=False),
                name="sendingdomain_verified_domain_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.domain


class SenderProfile(models.Model):
    """How a recruiter signs campaign emails in this organisation: the `recruiter.signature`
    merge field of the campaigns they send (their name and title live on the user)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    signature = models.TextField(
        blank=True,
        max_length=1000,
        help_text="Plain text; line breaks are kept. Use it in emails as {{ recruiter.signature }}.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="senderprofile_user_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Sender profile of {self.user_id}"


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


def weekdays_default() -> list[int]:
    return [0, 1, 2, 3, 4]


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
    topic = models.CharField(max_length=20, default=DefaultTopic.JOBS, help_text="A Topic's key.")
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
    pools = models.ManyToManyField("pipelines.Pool", blank=True, related_name="campaigns")
    excluded_pools = models.ManyToManyField(
        "pipelines.Pool", blank=True, related_name="excluded_from_campaigns"
    )
    # Targeting by what candidates told the preference centre: when families or locations are
    # set, only candidates interested in one of the families (RoleFamily keys) and in one of
    # the locations (or living there) are in the audience; `interest_include_unstated` keeps
    # those who have not stated that interest (services/audience.py).
    interest_role_families = ArrayField(
        models.CharField(max_length=20), default=list, blank=True, help_text="RoleFamily keys."
    )
    interest_locations = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    interest_include_unstated = models.BooleanField(
        "also include candidates who haven't told us their interests", default=True
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
    # Sequences only: steps go out inside the sending window (these weekdays, 0 = Monday,
    # between window_start and window_end) in the organisation's time zone, or the
    # candidate's when known and `use_candidate_time_zone`.
    window_days = ArrayField(
        models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)]),
        default=weekdays_default,
        blank=True,
    )
    window_start = models.TimeField(default=time(9, 0))
    window_end = models.TimeField(default=time(17, 0))
    use_candidate_time_zone = models.BooleanField(
        "send in the candidate's time zone when known", default=True
    )
    # Sequences only: candidates entering this pool join the running sequence at once.
    auto_join_pool = models.ForeignKey(
        "pipelines.Pool",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="auto_join_campaigns",
    )
    paused_at = models.DateTimeField(null=True, blank=True)
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

    class Condition(models.TextChoices):
        ALWAYS = "", "Always"
        NOT_OPENED = "not_opened", "Only if the previous email was not opened"
        NOT_CLICKED = "not_clicked", "Only if no link in the previous email was clicked"
        NOT_REPLIED = "not_replied", "Only if the previous email got no reply"

    subject = models.CharField(max_length=255, blank=True)
    preheader = models.CharField(max_length=255, blank=True)
    body_markdown = models.TextField("body", blank=True)
    # Sequences: otherwise the enrollment ends here (done) when the step becomes due.
    condition = models.CharField(max_length=20, choices=Condition.choices, blank=True)
    # Task steps: what the recruiter should do (becomes the follow-up's note).
    task_note = models.CharField(max_length=500, blank=True)

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
        ENGAGED = "engaged", "Engaged, so the next step was not needed"
        STAGE_WON = "stage_won", "Moved to a won stage"
        STAGE_LOST = "stage_lost", "Moved to a lost stage"
        MERGED = "merged", "Merged into another profile"
        HIRED = "hired", "Hired"

    # No index of its own: enrollment_unique and the indexes below lead with it.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="enrollments"
    )
    current_step = models.ForeignKey(
        Step, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    # When `current_step`'s delay is over; a sequence's `next_run_at` is this moved into the
    # sending window. Kept so that the window can be applied again (the organisation's time
    # zone changed) without moving a step before its delay. Null on rows from before it.
    due_at = models.DateTimeField(null=True, blank=True)
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
            # The dispatcher's scan across all organisations: only active rows are indexed, in
            # the order it claims them. With `next_run_at` alone a broadcast's enrollments (one
            # `next_run_at` for all) had to be sorted by id for every chunk: 94 ms to claim 500
            # of 100,000, against 0.7 ms read in index order (docs/performance.md).
            models.Index(
                fields=["next_run_at", "id"],
                condition=Q(status="active"),
                name="enrollment_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} in {self.campaign_id} ({self.status})"


class AudienceBatch(models.Model):
    """Part of a launched campaign's audience that is not enrolled yet.

    A launch computes its audience once, in one statement, and stores it here in batches of
    candidate ids (the snapshot: exclusions and opt-outs as they were at launch); the first
    batch is enrolled in the launch's own transaction and the rest by `campaigns.enroll`,
    one transaction per batch that inserts its enrollments and deletes the batch, so the first
    emails go out while a large audience is still being enrolled, and a worker lost halfway
    leaves whole batches behind that the dispatcher enrolls later — nobody twice, nobody lost.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="audience_batches"
    )
    position = models.PositiveIntegerField()
    candidate_ids = ArrayField(models.BigIntegerField())
    # What the enrollments get: the first step, when it runs and the launch time.
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="+")
    run_at = models.DateTimeField()
    enrolled_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "campaign", "position"], name="audiencebatch_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{len(self.candidate_ids)} candidates of campaign {self.campaign_id}"


class AutoJoinBatch(models.Model):
    """Candidates who entered a pool that a launched sequence joins from, not handled yet.

    Written in the pool change's own transaction (`sequences.pool_entries_enqueue`, up to
    AUTO_JOIN_CHUNK ids a row), so the entry and the promise to enroll commit together. The
    `campaigns.sequence_auto_join` task enrolls a batch and deletes it in one transaction; a
    batch still here after AUTO_JOIN_STALE_SECONDS lost its task (the broker was down, a
    worker or a Redis restart lost it) and the dispatcher enrolls it — nobody twice, nobody
    lost. Rows live seconds: the table stays tiny, and its foreign keys' indexes are all it
    needs."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    pool = models.ForeignKey("pipelines.Pool", on_delete=models.CASCADE, related_name="+")
    candidate_ids = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    def __str__(self) -> str:
        return f"{len(self.candidate_ids)} candidates who entered pool {self.pool_id}"


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
        NO_CONSENT = "no_consent", "No recorded consent"
        MERGED = "merged", "Merged into another profile"
        CANDIDATE_DELETED = "candidate_deleted", "Candidate deleted"
        HIRED = "hired", "Hired"

    # No index of its own: message_once_per_step and three indexes below lead with it.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
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
    delivered_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
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
            # ESP webhooks arrive without an organisation and are matched by the ESP's id.
            models.Index(
                fields=["esp_message_id"], condition=~Q(esp_message_id=""), name="message_esp_id"
            ),
            # The frequency cap counts a candidate's recent campaign emails.
            models.Index(
                fields=["organization", "candidate", "-sent_at"],
                condition=Q(sent_at__isnull=False),
                name="message_candidate_sent",
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
        models.CharField(max_length=20), default=list, blank=True, help_text="Topic keys."
    )
    paused_until = models.DateField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Frequency(models.TextChoices):
        ANY = "", "Whenever there is something for me"
        WEEKLY = "weekly", "At most once a week"
        MONTHLY = "monthly", "At most once a month"

    # How often the candidate wants campaign email: enforced at send time like the
    # organisation's frequency cap (services/guards.py); over it, an email waits.
    frequency = models.CharField(max_length=10, choices=Frequency.choices, blank=True)
    # What the candidate is interested in, so job alerts and campaigns fit: role families they
    # ticked (RoleFamily keys; campaigns target them), other roles and places as they wrote
    # them (free text).
    interested_role_families = ArrayField(
        models.CharField(max_length=20), default=list, blank=True, help_text="RoleFamily keys."
    )
    interested_roles = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    interested_locations = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    open_to_remote = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "candidate"])]

    def __str__(self) -> str:
        return f"Preferences of {self.candidate_id}"

    def is_paused_on(self, day: date) -> bool:
        """Whether the pause ("Pause all emails for N months") holds emails on `day`, a date in
        the organisation's time zone. It ends ON `paused_until`: paused on 15 May for a month,
        the candidate gets emails again from 15 June, the day the preference centre says they
        are paused "until". The send path and the profile both ask this."""
        return self.paused_until is not None and day < self.paused_until


class Consent(models.Model):
    """A candidate's consent to campaign email: what they agreed to (the wording shown), when,
    where (source), and whether they withdrew it. A double opt-in request is a row without
    `granted_at` until the candidate confirms. `topic` empty means all campaign email.
    (Room for the privacy roadmap: lawful basis per purpose, renewals.)"""

    class Purpose(models.TextChoices):
        CAMPAIGN_EMAIL = "campaign_email", "Campaign email"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="consents"
    )
    purpose = models.CharField(
        max_length=30, choices=Purpose.choices, default=Purpose.CAMPAIGN_EMAIL
    )
    topic = models.ForeignKey(
        Topic, on_delete=models.SET_NULL, null=True, blank=True, related_name="consents"
    )
    source = models.CharField(max_length=200, help_text="Where it was given: a form, an import…")
    wording = models.TextField(help_text="The exact text the candidate agreed to.")
    requested_at = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "candidate", "purpose"])]

    def __str__(self) -> str:
        return f"Consent of {self.candidate_id} ({self.purpose})"

    @property
    def is_active(self) -> bool:
        return self.granted_at is not None and self.withdrawn_at is None


class EspEvent(models.Model):
    """One tracking event an ESP sent us through anymail, kept so that the ESP re-sending the
    same event (they retry until they get a 2xx) changes nothing the second time.
    Unique per (esp, event_id) across organisations: ESP event ids are global."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=30)
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="esp_events"
    )
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["esp", "event_id"], name="espevent_unique")]
        indexes = [models.Index(fields=["organization", "message"])]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.event_id}"


class PendingEspEvent(models.Model):
    """A tracking event that found no Message whose send was recorded: it arrived before the
    send task stored the ESP's message id (the ESP's webhook can beat our `sent` UPDATE), its
    Message was still `sending`, or it is not about a campaign email at all (transactional
    email through the same ESP). `webhooks.esp_events_retry` tries it again every minute and
    applies it once its Message's send is recorded; after `webhooks.pending_retry_for()` it is
    dropped. Not scoped: which organisation it belongs to is known only once it matches."""

    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=255)  # webhooks.event_key: the EspEvent it becomes
    event_type = models.CharField(max_length=30)
    esp_message_id = models.CharField(max_length=255)  # as the ESP reported it
    # The rest of anymail's normalised event that `webhooks._apply` reads.
    event = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="pendingespevent_unique")
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.esp_message_id} (pending)"


class InboundEmail(models.Model):
    """An email a candidate sent back, matched to the campaign Message it answers.
    Auto-replies (out of office, RFC 3834) are kept, flagged, and do not count as replies."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="replies")
    candidate = models.ForeignKey(
        "candidates.Candidate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_emails",
    )
    email_message_id = models.CharField("Message-ID", max_length=255)
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True, help_text="The reply without quoted text or signature.")
    full_text = models.TextField(blank=True)
    is_auto_reply = models.BooleanField(default=False)
    auto_reply_reason = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email_message_id"], name="inboundemail_unique"
            )
        ]
        indexes = [models.Index(fields=["organization", "candidate", "-received_at"])]

    def __str__(self) -> str:
        return f"Reply to {self.message_id} from {self.from_email}"
