"""Candidates: profiles, notes, the activity timeline, attachments, saved searches, imports,
bulk jobs, duplicate suggestions and merges.

Every model is tenant-owned: an `organization` FK and a django-scopes ScopedManager; unique
constraints and composite indexes start with `organization`.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper
from django_scopes import ScopedManager

from crm.models import Organization


class CandidateQuerySet(models.QuerySet):
    def live(self):
        """Candidates that are not merged into another profile."""
        return self.filter(merged_into__isnull=True)

    def with_last_contacted(self, organization_id: int | None = None):
        """Each candidate's `last_contacted_at` (None: never), read from its CandidateContact
        through a left join, for lists that show, sort or filter by it. With the organisation
        the join names it too, so that a sort by it reads the contacts' index in order
        (`contact_org_recent` leads with the organisation; see `search.keyset_page`)."""
        if organization_id is None:
            return self.annotate(last_contacted_at=models.F("contact__last_contacted_at"))
        return self.annotate(
            contact_here=models.FilteredRelation(
                "contact", condition=Q(contact__organization_id=organization_id)
            ),
            last_contacted_at=models.F("contact_here__last_contacted_at"),
        )


class Candidate(models.Model):
    class Source(models.TextChoices):
        SOURCED = "sourced", "Sourced"
        REFERRAL = "referral", "Referral"
        EVENT = "event", "Event"
        CAREER_SITE = "career_site", "Career site"
        APPLIED = "applied", "Applied"
        IMPORT = "import", "Import"
        API = "api", "API"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NOT_NOW = "not_now", "Not now"
        HIRED = "hired", "Hired"
        DO_NOT_CONTACT = "do_not_contact", "Do not contact"

    class Seniority(models.TextChoices):
        INTERN = "intern", "Intern"
        JUNIOR = "junior", "Junior"
        MID = "mid", "Mid-level"
        SENIOR = "senior", "Senior"
        LEAD = "lead", "Lead"
        PRINCIPAL = "principal", "Principal"
        MANAGER = "manager", "Manager"
        DIRECTOR = "director", "Director"
        EXECUTIVE = "executive", "Executive"

    # No index of its own: candidate_org_id_unique below leads with it (as do the list's).
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="candidates", db_index=False
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    # Stored lower-cased (candidate_email_lower_case; writers use normalize.normalize_email);
    # unique per organisation among live profiles.
    email = models.EmailField(max_length=254, blank=True)
    alternate_emails = ArrayField(models.EmailField(max_length=254), default=list, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +447700900123")
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)
    # IANA name (e.g. "Europe/Berlin"); campaign sequences send inside their window in it.
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    headline = models.CharField(max_length=255, blank=True)
    current_title = models.CharField(max_length=200, blank=True)
    current_company = models.CharField(max_length=200, blank=True)
    linkedin_url = models.URLField("LinkedIn", max_length=500, blank=True)
    github_url = models.URLField("GitHub", max_length=500, blank=True)
    portfolio_url = models.URLField("portfolio", max_length=500, blank=True)
    # Normalised free tags: trimmed, single-spaced, lower-cased ("Python" and "python" are one).
    skills = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    seniority = models.CharField(max_length=20, choices=Seniority.choices, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SOURCED)
    source_detail = models.CharField(max_length=255, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_candidates",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    not_now_until = models.DateField(null=True, blank=True)
    # Values of the organisation's CustomFields, keyed by CustomField.key.
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    # "Last contacted" is a CandidateContact row (`candidate.contact`), not a column here.
    engagement_score = models.PositiveSmallIntegerField(null=True, blank=True)
    has_resume = models.BooleanField(default=False)
    # Text extracted from resumes, concatenated; feeds the search vector (weight D).
    resume_text = models.TextField(blank=True)
    # A merged-away profile is the survivor's person: deleting the survivor deletes it too
    # (never live again, and an erasure erases it).
    merged_into = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="merged_from"
    )
    # Maintained by the database trigger `candidates_search_update` (migration 0002), so that
    # every write path — forms, bulk updates, COPY-based imports — keeps search current.
    search_vector = SearchVectorField(null=True, editable=False)
    search_name = models.TextField(blank=True, editable=False)

    objects = ScopedManager(
        organization="organization",
        _manager_class=models.Manager.from_queryset(CandidateQuerySet),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "email",
                condition=~Q(email="") & Q(merged_into__isnull=True),
                name="candidate_email_unique_per_org",
            ),
            # The uniqueness above is case-sensitive: it holds for addresses only because every
            # writer (admin, shell and raw SQL included) must store them lower-cased.
            models.CheckConstraint(
                condition=Q(email=Lower("email")),
                name="candidate_email_lower_case",
                violation_error_message="Email addresses are stored in lower case.",
            ),
            # The target of the (organization_id, candidate_id) foreign keys of the tables that
            # hold many rows per candidate (timeline, pool memberships): one check proves both
            # that the candidate exists and that it belongs to the row's organisation.
            models.UniqueConstraint(fields=["organization", "id"], name="candidate_org_id_unique"),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="cand_org_created"),
            models.Index(
                fields=["organization", "last_name", "first_name", "id"], name="cand_org_name"
            ),
            models.Index(fields=["organization", "status"], name="cand_org_status"),
            models.Index(fields=["organization", "owner"], name="cand_org_owner"),
            models.Index(fields=["organization", "phone"], name="cand_org_phone"),
            models.Index("organization", Lower("current_company"), name="cand_org_company"),
            # The country filter is case-insensitive (UPPER(country) = UPPER(…)): this serves it
            # and gives the planner real statistics for it.
            models.Index("organization", Upper("country"), name="cand_org_country"),
            GinIndex(fields=["organization", "search_vector"], name="cand_search_gin"),
            GinIndex(fields=["organization", "skills"], name="cand_skills_gin"),
            GinIndex(fields=["organization", "tags"], name="cand_tags_gin"),
            # Duplicate detection: "another candidate has this address as an alternate". Not led
            # by organization: the addresses are selective, a btree_gin org key is not.
            GinIndex(fields=["alternate_emails"], name="cand_alt_emails_gin"),
            GinIndex(fields=["custom_fields"], name="cand_custom_gin"),
            # Typo tolerance's fallback and the duplicate scan. Not led by organization: with a
            # btree_gin tenant key every probe of a nested loop (the duplicate check joins on
            # `%`) reads the whole organisation's posting list, and at a million rows the
            # planner filters by tenant after the trigram scan anyway.
            GinIndex(OpClass("search_name", name="gin_trgm_ops"), name="cand_name_trgm"),
            GinIndex(OpClass("email", name="gin_trgm_ops"), name="cand_email_trgm"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def initials(self) -> str:
        return (self.first_name[:1] + self.last_name[:1]).upper()


class CandidateContact(models.Model):
    """When Rapport last reached a candidate: a campaign email sent, a call, meeting or message
    logged, a sequence's task done (`candidates_mark_contacted`). No row: never contacted.

    A narrow row of its own, not a column of the candidate: every campaign email moves it, and
    the candidate's row has twenty indexes, seven of them GIN. As a column, each email rewrote
    the whole candidate with a new entry in every one of those indexes (~300 µs of database
    time per email, the largest single cost of a send: docs/performance.md, run 8); this row
    has two. The candidate list sorts and filters by it through a join (`with_last_contacted`).
    """

    candidate = models.OneToOneField(
        Candidate, on_delete=models.CASCADE, primary_key=True, related_name="contact"
    )
    # No index of its own: `contact_org_recent` leads with it.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    last_contacted_at = models.DateTimeField()

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "-last_contacted_at", "-candidate"],
                name="contact_org_recent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} last contacted {self.last_contacted_at:%Y-%m-%d %H:%M}"


class CustomField(models.Model):
    """An organisation-defined field on every candidate (admins define them)."""

    class FieldType(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        CHOICE = "choice", "Choice"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    key = models.SlugField(max_length=50, help_text="Used in imports, filters and merge fields.")
    label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    archived = models.BooleanField(default=False)
    # Number fields only: the smallest and largest value a candidate may have (None: no limit
    # beyond what every number has, 0 or more with 15 digits, 4 after the point; see
    # services.custom_fields). Changing them leaves stored values as they are.
    min_value = models.DecimalField(
        "minimum", max_digits=15, decimal_places=4, null=True, blank=True
    )
    max_value = models.DecimalField(
        "maximum", max_digits=15, decimal_places=4, null=True, blank=True
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["position", "label"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="customfield_key_unique"),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(min_value__lte=models.F("max_value")),
                name="customfield_min_value_lte_max_value",
                violation_error_message="The maximum cannot be lower than the minimum.",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def limits_text(self) -> str:
        """A number field's limits as people read them: "from 0 to 60", "at least 0",
        "at most 60", or "" without limits."""
        low, high = self.min_value, self.max_value
        if low is not None and high is not None:
            return f"from {number_text(low)} to {number_text(high)}"
        if low is not None:
            return f"at least {number_text(low)}"
        if high is not None:
            return f"at most {number_text(high)}"
        return ""


def number_text(value: Decimal) -> str:
    """A number as people write it: Decimal("60.0000") → "60", Decimal("2.5000") → "2.5"
    (never "6E+1")."""
    return f"{Decimal(value).normalize():f}"


class Note(models.Model):
    """A recruiter's note on a candidate. A note can also record a contact made outside
    Rapport's campaign email (a call, a meeting, a message): that moves the candidate's
    "last contacted" as a campaign email does."""

    class Contact(models.TextChoices):
        CALL = "call", "Call"
        MEETING = "meeting", "Meeting"
        MESSAGE = "message", "Message (LinkedIn, text, chat)"
        EMAIL = "email", "Email sent outside Rapport"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField()
    # db_default: rows written in SQL (the benchmark's seed) are plain notes.
    contact = models.CharField(
        max_length=10,
        choices=Contact.choices,
        blank=True,
        default="",
        db_default="",
        help_text="Blank: just a note.",
    )
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "candidate", "-created_at"])]

    def __str__(self) -> str:
        return self.body[:50]


class Activity(models.Model):
    """One interaction on a candidate's timeline. Other apps write through
    `candidates.services.activity_record`; nothing else creates these rows."""

    class Kind(models.TextChoices):
        CREATED = "created", "Profile created"
        EDITED = "edited", "Profile edited"
        STATUS_CHANGED = "status_changed", "Status changed"
        NOTE_ADDED = "note_added", "Note"
        ATTACHMENT_ADDED = "attachment_added", "File attached"
        IMPORTED = "imported", "Imported"
        MERGED = "merged", "Profiles merged"
        UNMERGED = "unmerged", "Merge undone"
        TAGGED = "tagged", "Tags changed"
        OWNER_CHANGED = "owner_changed", "Owner changed"
        POOL_ADDED = "pool_added", "Added to pool"
        POOL_REMOVED = "pool_removed", "Removed from pool"
        STAGE_CHANGED = "stage_changed", "Stage changed"
        EMAIL_SENT = "email_sent", "Email sent"
        EMAIL_OPENED = "email_opened", "Email opened"
        EMAIL_CLICKED = "email_clicked", "Link clicked"
        EMAIL_REPLIED = "email_replied", "Replied"
        EMAIL_AUTO_REPLIED = "email_auto_replied", "Automatic reply"
        EMAIL_BOUNCED = "email_bounced", "Email bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        CONSENT_CHANGED = "consent_changed", "Consent changed"
        FOLLOW_UP = "follow_up", "Follow-up"
        ENROLLMENT = "enrollment", "Campaign sequence"

    # Bulk writers (imports, smart pools, sending) add an entry per candidate, so every index
    # here has a reader: organization has none of its own (activity_timeline leads with it);
    # candidate keeps one for deleting candidates; actor and note are indexed only where set.
    # Foreign keys are checked row by row, so there is one for organization and candidate
    # together instead of one each: activity_candidate_fk, (organization_id, candidate_id) →
    # candidates_candidate (organization_id, id), added by migration 0010 (Django cannot declare
    # it). The candidate exists and is the organisation's; its own foreign key proves the
    # organisation exists. Deleting still cascades through the ORM as before.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    candidate = models.ForeignKey(
        Candidate, on_delete=models.CASCADE, related_name="activities", db_constraint=False
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # partial index below
    )
    occurred_at = models.DateTimeField(db_index=False)
    summary = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    note = models.ForeignKey(
        Note,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        db_index=False,  # partial index below
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        verbose_name_plural = "activities"
        indexes = [
            models.Index(
                fields=["organization", "candidate", "-occurred_at", "-id"],
                name="activity_timeline",
            ),
            # For deleting a user (SET NULL) or a note (CASCADE): most entries have neither.
            models.Index(
                fields=["actor"], condition=models.Q(actor__isnull=False), name="activity_actor"
            ),
            models.Index(
                fields=["note"], condition=models.Q(note__isnull=False), name="activity_note"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.summary}"


def attachment_upload_to(instance: "Attachment", filename: str) -> str:
    # Never the user's file name on disk: an opaque path, and never under a public URL.
    return f"attachments/{instance.organization_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    class Kind(models.TextChoices):
        RESUME = "resume", "Resume"
        OTHER = "other", "Other"

    class Extraction(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_upload_to, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RESUME)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    extracted_text = models.TextField(blank=True)
    extraction_status = models.CharField(
        max_length=10, choices=Extraction.choices, default=Extraction.PENDING
    )
    extraction_error = models.CharField(max_length=255, blank=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "candidate", "-uploaded_at"])]

    def __str__(self) -> str:
        return self.original_name


class SavedSearch(models.Model):
    """A named set of candidate filters (the list page's query string), per user.
    Smart pools (pipelines app) are defined by one."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    name = models.CharField(max_length=100)
    query = models.JSONField(default=dict, help_text="Filter parameters as a dict of lists.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "owner", "name"], name="savedsearch_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """A long-running piece of work (import, bulk action, export) with a progress bar.

    The Celery task updates `processed` as it commits batches, so a crash leaves a state that
    says exactly what landed and can be resumed from `processed`.
    """

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        BULK = "bulk", "Bulk action"
        EXPORT = "export", "Export"
        DUPLICATE_SCAN = "duplicate_scan", "Duplicate scan"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What to do: for imports the mapping and options; for bulk actions the action, its
    # arguments and the selection (ids or the filter query).
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    # Outcome counters (created/updated/skipped/failed for imports; changed for bulk actions).
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    input_file = models.FileField(upload_to="jobs/input/", blank=True, max_length=255)
    input_name = models.CharField(max_length=255, blank=True)
    output_file = models.FileField(upload_to="jobs/output/", blank=True, max_length=255)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, int(self.processed * 100 / self.total))

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}


class ImportRowError(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    reason = models.TextField()

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["row_number"]
        indexes = [models.Index(fields=["organization", "job", "row_number"])]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


class DuplicateSuggestion(models.Model):
    """Two live candidates that may be the same person. candidate_a_id < candidate_b_id."""

    class Reason(models.TextChoices):
        EMAIL = "email", "Same email"
        PHONE = "phone", "Same phone"
        NAME_COMPANY = "name_company", "Similar name, same company"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Not a duplicate"
        MERGED = "merged", "Merged"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate_a = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    score = models.FloatField(default=1.0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "candidate_a", "candidate_b"], name="duplicate_pair_unique"
            ),
            models.CheckConstraint(
                condition=Q(candidate_a__lt=models.F("candidate_b")), name="duplicate_pair_ordered"
            ),
        ]
        indexes = [models.Index(fields=["organization", "state", "-score"])]

    def __str__(self) -> str:
        return f"{self.candidate_a_id} ~ {self.candidate_b_id} ({self.reason})"


class MergeRecord(models.Model):
    """A merge of `secondary` into `primary`, with what is needed to undo it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    primary = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    secondary = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    # The primary's field values before the merge, and the ids of rows moved from the
    # secondary to the primary, by model label ({"candidates.Note": [..], ...}).
    primary_snapshot = models.JSONField(default=dict)
    moved = models.JSONField(default=dict)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "primary", "-merged_at"])]

    def __str__(self) -> str:
        return f"merge {self.secondary_id} → {self.primary_id}"
