"""Talent pools and their pipelines, future roles and follow-ups.

Every model is tenant-owned: an `organization` FK and a django-scopes ScopedManager; unique
constraints and composite indexes start with `organization`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_scopes import ScopedManager

from crm.models import Organization


class Stage(models.Model):
    """One column of a pipeline. `pool` is empty for the organisation's default stage set and
    set for a pool that has its own stages. Stages are archived, never deleted: StageChange
    history points at them."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won (hired)"
        LOST = "lost", "Lost (not now, not interested)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    pool = models.ForeignKey(
        "Pool", on_delete=models.CASCADE, null=True, blank=True, related_name="own_stages"
    )
    name = models.CharField(max_length=60)
    position = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OPEN)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "pool", "name"],
                condition=Q(archived=False),
                nulls_distinct=False,
                name="stage_name_unique_active",
            ),
            # Target of PoolMembership's (organization_id, stage_id) foreign key.
            models.UniqueConstraint(fields=["organization", "id"], name="stage_org_id_unique"),
        ]
        indexes = [models.Index(fields=["organization", "pool", "position"])]

    def __str__(self) -> str:
        return self.name


class Pool(models.Model):
    class Visibility(models.TextChoices):
        ORGANIZATION = "organization", "Everyone in the organisation"
        OWNER = "owner", "Only me"

    class Kind(models.TextChoices):
        STATIC = "static", "Static — add and remove people yourself"
        SMART = "smart", "Smart — everyone matching a saved search"

    class Color(models.TextChoices):
        BLUE = "blue", "Blue"
        TEAL = "teal", "Teal"
        GREEN = "green", "Green"
        AMBER = "amber", "Amber"
        ORANGE = "orange", "Orange"
        RED = "red", "Red"
        PURPLE = "purple", "Purple"
        GREY = "grey", "Grey"

    class Icon(models.TextChoices):
        COLLECTION = "collection", "Collection"
        STAR = "star", "Star"
        ROCKET = "rocket-takeoff", "Rocket"
        CODE = "code-slash", "Code"
        PEOPLE = "people", "People"
        BRIEFCASE = "briefcase", "Briefcase"
        LIGHTNING = "lightning-charge", "Lightning"
        GEM = "gem", "Gem"
        MEGAPHONE = "megaphone", "Megaphone"
        PALETTE = "palette", "Palette"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.ORGANIZATION
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STATIC)
    color = models.CharField("colour", max_length=10, choices=Color.choices, default=Color.BLUE)
    icon = models.CharField(max_length=20, choices=Icon.choices, default=Icon.COLLECTION)
    # Smart pools: the saved search that defines who is in the pool.
    saved_search = models.ForeignKey(
        "candidates.SavedSearch",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="smart_pools",
    )
    # True when the pool has its own stages (Stage.pool = this pool) instead of the defaults.
    custom_stages = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # Archived pools are hidden from lists and pickers, their board is read-only and a smart
    # pool stops following its search; the memberships and the stage history (funnel and
    # time-in-stage analytics) are kept. Only an admin deletes a pool for good.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # Target of PoolMembership's (organization_id, pool_id) foreign key.
            models.UniqueConstraint(fields=["organization", "id"], name="pool_org_id_unique"),
        ]
        indexes = [models.Index(fields=["organization", "kind"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_smart(self) -> bool:
        return self.kind == self.Kind.SMART

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class PoolMembership(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Added by hand"
        SMART = "smart", "Matches the pool's search"

    # Every index is written for each of the hundreds of thousands of rows a smart pool
    # materialises, so each one here has a reader. organization: no index of its own (every
    # composite below leads with it). pool, candidate, stage: their own indexes, which deleting
    # a pool, a candidate or a pool's stages needs (no composite leads with them).
    #
    # Foreign keys are checked one query per row too, so pool, candidate and stage are each
    # checked together with the organisation (migration 0004, Django cannot declare these):
    # poolmember_pool_fk, poolmember_candidate_fk and poolmember_stage_fk reference
    # (organization_id, id) of pipelines_pool, candidates_candidate and pipelines_stage. Three
    # checks instead of four, and a membership can no longer name another organisation's pool,
    # candidate or stage; the organisation exists because the pool's own foreign key says so.
    # The ORM still cascades (and restricts) as declared here. stage is RESTRICT, not PROTECT:
    # a stage with cards cannot be deleted on its own, but deleting the whole pool or
    # organisation (which cascades to the memberships too) can.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    pool = models.ForeignKey(
        Pool, on_delete=models.CASCADE, related_name="memberships", db_constraint=False
    )
    candidate = models.ForeignKey(
        "candidates.Candidate",
        on_delete=models.CASCADE,
        related_name="pool_memberships",
        db_constraint=False,
    )
    stage = models.ForeignKey(
        Stage, on_delete=models.RESTRICT, related_name="+", db_constraint=False
    )
    entered_stage_at = models.DateTimeField()
    added_at = models.DateTimeField()
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # partial index below
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "pool", "candidate"], name="poolmembership_unique"
            )
        ]
        indexes = [
            # The board: a column is a range of this index (newest arrivals first, keyset
            # pagination), and the column counts are a GROUP BY over it (index-only; added_at
            # is included for the pool list's "added in the last 30 days"). Ascending, read
            # backwards for "newest first": new cards (a smart pool's 300,000 members, a move)
            # then land at the right end of their column, where a full page is split once and
            # stays full; descending, each landed at the left end and every split left two
            # half-empty pages (the index 1.8x the size, 0.25 s more per 300,000 members).
            models.Index(
                fields=["organization", "pool", "stage", "entered_stage_at", "id"],
                include=["added_at"],
                name="poolmember_board",
            ),
            models.Index(fields=["organization", "candidate"], name="poolmember_candidate"),
            # Only for deleting a user (SET NULL); smart members have no adder and cost nothing.
            models.Index(
                fields=["added_by"],
                condition=models.Q(added_by__isnull=False),
                name="poolmember_added_by",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} in {self.pool_id} at {self.stage_id}"

    @property
    def days_in_stage(self) -> int:
        """Calendar days in the current time zone (the organisation's on its pages), as the
        board counts them."""
        entered = timezone.localtime(self.entered_stage_at).date()
        return max(0, (timezone.localdate() - entered).days)


class StageChange(models.Model):
    """A card moved from one stage to another (from_stage is empty when it entered the pool).
    Kept when the membership goes, for time-in-stage and funnel analytics."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="stage_changes")
    # SET NULL in the database too (migration 0008; Django cannot declare it): a move that
    # commits a history row while another transaction deletes the card (a removal, a smart
    # pool member leaving) must not make that delete fail at commit.
    membership = models.ForeignKey(
        PoolMembership, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="stage_changes"
    )
    # RESTRICT guards the history inside a living organisation (a stage that was moved
    # through cannot be deleted; stages are archived instead), while deleting the pool or the
    # whole organisation, which cascades to these rows as well, is allowed. PROTECT blocked
    # an operator from deleting a tenant at all.
    from_stage = models.ForeignKey(
        Stage, on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.RESTRICT, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField()

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "pool", "changed_at"], name="stagechange_pool"),
            models.Index(
                fields=["organization", "candidate", "changed_at"], name="stagechange_candidate"
            ),
            models.Index(fields=["organization", "to_stage"], name="stagechange_to_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id}: {self.from_stage_id} → {self.to_stage_id}"


class HiringRole(models.Model):
    """A future hiring need ("roles" in the UI), with the pools that should fill it."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        OPEN = "open", "Open"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    title = models.CharField(max_length=150)
    team = models.CharField(max_length=100, blank=True)
    location = models.CharField(max_length=100, blank=True)
    target_date = models.DateField("target hire date", null=True, blank=True)
    headcount = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    notes = models.TextField(blank=True)
    pools = models.ManyToManyField(Pool, through="RolePool", related_name="roles", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [models.Index(fields=["organization", "status", "target_date"])]

    def __str__(self) -> str:
        return self.title


class RolePool(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    role = models.ForeignKey(HiringRole, on_delete=models.CASCADE, related_name="role_pools")
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="role_pools")

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "role", "pool"], name="rolepool_unique")
        ]

    def __str__(self) -> str:
        return f"{self.role_id} ← {self.pool_id}"


class FollowUp(models.Model):
    """ "Call Ana in 3 months": a dated reminder about a candidate for a recruiter."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Set by a recruiter"
        NOT_NOW = "not_now", "Back from “not now”"
        CAMPAIGN = "campaign", "A task step of a campaign sequence"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    candidate = models.ForeignKey(
        "candidates.Candidate", on_delete=models.CASCADE, related_name="follow_ups"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
    )
    due_on = models.DateField()
    note = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ScopedManager(organization="organization")

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "owner", "due_on"],
                condition=Q(completed_at__isnull=True),
                name="followup_open_by_owner",
            ),
            models.Index(fields=["organization", "candidate", "due_on"], name="followup_candidate"),
        ]

    def __str__(self) -> str:
        return f"Follow up {self.candidate_id} on {self.due_on}"


class FollowUpDigest(models.Model):
    """One row per recruiter and day a digest went out: sending twice is impossible."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sent_on = models.DateField()
    follow_up_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organization="organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "sent_on"], name="followupdigest_unique"
            )
        ]

    def __str__(self) -> str:
        return f"digest {self.user_id} {self.sent_on}"
