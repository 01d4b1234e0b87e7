"""Merging two candidate profiles of the same person, and undoing a merge.

The secondary profile is folded into the primary: the recruiter picks, field by field, which
value to keep; skills, tags and email addresses are combined; the secondary's notes, timeline
and files move to the primary; the secondary stays in the database with ``merged_into`` set, so
it disappears from lists and its old URL can lead to the primary; deleting the primary deletes
it too (``merged_into`` cascades: it is the same person). A MergeRecord keeps the primary's
values before the merge and the ids of every moved row, which is exactly what undo needs.

Other apps whose rows belong to a candidate register a mover so that merges carry those rows
too, e.g. in their AppConfig.ready():

    from candidates.services.merge import MERGE_MOVERS, MergeMover
    MERGE_MOVERS.append(MergeMover("pipelines.PoolMembership", "candidate", unique_with=("pool",)))

``unique_with`` names the fields that, with the candidate, must stay unique: a row of the
secondary whose twin already belongs to the primary stays where it is (and comes back with the
secondary on undo).

An app that must do more than move rows registers a ``MergeHook``: ``on_merge(primary,
secondary)`` runs inside the merge's transaction after the rows moved and returns JSON that the
MergeRecord keeps; ``on_undo(primary, secondary, data)`` gets it back when the merge is undone
(after the rows moved back) and returns what it kept that restricts contact more than before
the merge, in a few words for the undo's timeline entry, or None.
After a merge or an undo, ``candidate_changed`` is sent for the profiles whose values changed,
so what depends on them (smart pools) follows.

An undo never loosens a contact restriction: the primary gets its own values back, except
that it keeps the stricter status of the two (now and before the merge) and, through the
campaigns hook, every email preference that restricts contact (see docs/candidates-and-pools.md).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple

from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from candidates.models import (
    Activity,
    Candidate,
    CandidateContact,
    DuplicateSuggestion,
    MergeRecord,
)
from candidates.services.activities import (
    activity_record,
    candidate_last_contacted,
    candidates_mark_contacted,
)
from candidates.services.attachments import candidate_refresh_resume_text
from candidates.signals import candidate_changed
from crm.models import User

Choice = Literal["primary", "secondary"]


class MergeMover(NamedTuple):
    label: str  # "app_label.ModelName"
    field: str  # the ForeignKey to Candidate
    unique_with: tuple[str, ...] = ()


class MergeHook(NamedTuple):
    name: str
    on_merge: Callable[[Candidate, Candidate], Any]
    on_undo: Callable[[Candidate, Candidate, Any], str | None]


MERGE_HOOKS: list[MergeHook] = []

MERGE_MOVERS: list[MergeMover] = [
    MergeMover("candidates.Note", "candidate"),
    MergeMover("candidates.Activity", "candidate"),
    MergeMover("candidates.Attachment", "candidate"),
]

# Fields the recruiter chooses between when the two profiles differ (in screen order).
CHOICE_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "headline",
    "current_title",
    "current_company",
    "seniority",
    "city",
    "country",
    "linkedin_url",
    "github_url",
    "portfolio_url",
    "status",
    "not_now_until",
    "owner",
    "source",
    "source_detail",
]
# Fields combined from both profiles.
UNION_FIELDS = ["skills", "tags", "alternate_emails"]
CUSTOM_PREFIX = "custom:"
# What undo restores on the primary (and "last_contacted_at", its CandidateContact).
SNAPSHOT_FIELDS = [*CHOICE_FIELDS, *UNION_FIELDS, "custom_fields"]
CONTACTED = "last_contacted_at"


class MergeError(Exception):
    """A merge or undo that cannot happen; the message is for people."""


def _value(candidate: Candidate, name: str):
    if name.startswith(CUSTOM_PREFIX):
        return candidate.custom_fields.get(name.removeprefix(CUSTOM_PREFIX))
    return getattr(candidate, Candidate._meta.get_field(name).attname)


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _offers(secondary: Candidate, name: str) -> bool:
    """Whether the secondary has a value of `name` to offer: anything not empty, and the date
    of its "not now" even when it has none (a "not now" without a date never ends)."""
    if name == "not_now_until" and secondary.status == Candidate.Status.NOT_NOW:
        return True
    return not _empty(_value(secondary, name))


def merge_differences(*, primary: Candidate, secondary: Candidate) -> list[str]:
    """The fields (and custom fields, as "custom:<key>") whose values differ and where the
    secondary has something to offer — the recruiter chooses for each."""
    names = [*CHOICE_FIELDS]
    keys = sorted(set(primary.custom_fields) | set(secondary.custom_fields))
    names += [CUSTOM_PREFIX + key for key in keys]
    return [
        name
        for name in names
        if _value(primary, name) != _value(secondary, name) and _offers(secondary, name)
    ]


# How strongly a status holds Rapport back from contacting someone: a merge keeps the stricter
# of the two by default, like the email preferences (a "Do not contact" is never lost because
# the profile that said it was the secondary). "Hired" keeps someone out of campaign email
# for good, as "Do not contact" does, but is no wish of theirs; "Not now" only until its date.
_STATUS_STRICTNESS = {
    Candidate.Status.DO_NOT_CONTACT: 3,
    Candidate.Status.HIRED: 2,
    Candidate.Status.NOT_NOW: 1,
}


def _stricter(primary: Candidate, secondary: Candidate) -> Choice:
    strictness = _STATUS_STRICTNESS.get
    return (
        "secondary"
        if strictness(secondary.status, 0) > strictness(primary.status, 0)
        else "primary"
    )


def _not_now_lasts_longer(first, second) -> bool:
    """Whether "not now until `first`" holds contact back longer than "until `second`": the
    one rule for two "not now" in a merge and in its undo. A "not now" without a date (old
    data: the forms and imports now always give one) never ends — the daily run only brings
    back those whose date has come — so it lasts longer than any date; keeping a date instead
    would put someone who asked not to be contacted back into campaigns on that day."""
    if first is None or second is None:
        return first is None and second is not None
    return first > second


def _keep_stricter_status(candidate: Candidate, *, status: str, not_now_until) -> bool:
    """Give `candidate` (holding the values an undo restores) `status` and `not_now_until`
    where they restrict contact more: the stricter status, and of two "not now", the one that
    lasts longer (`_not_now_lasts_longer`). Returns whether they did."""
    strictness = _STATUS_STRICTNESS.get
    if strictness(status, 0) > strictness(candidate.status, 0) or (
        status == candidate.status == Candidate.Status.NOT_NOW
        and _not_now_lasts_longer(not_now_until, candidate.not_now_until)
    ):
        candidate.status, candidate.not_now_until = status, not_now_until
        return True
    return False


def merge_default_choice(*, primary: Candidate, secondary: Candidate, name: str) -> Choice:
    """What a merge keeps unless the recruiter chooses: the stricter status (and, with a "not
    now" status, its date: when both say "not now", the one that lasts longer — no date
    outlasts any, as on undo); otherwise the primary's value, unless it is empty."""
    if name == "status":
        return _stricter(primary, secondary)
    if name == "not_now_until" and secondary.status == Candidate.Status.NOT_NOW:
        if primary.status == Candidate.Status.NOT_NOW:
            later = _not_now_lasts_longer(secondary.not_now_until, primary.not_now_until)
            return "secondary" if later else "primary"
        if _stricter(primary, secondary) == "secondary":
            return "secondary"
    return "secondary" if _empty(_value(primary, name)) else "primary"


def _union(*lists) -> list:
    seen: dict = {}
    for values in lists:
        for value in values or []:
            seen.setdefault(value, None)
    return list(seen)


def merge_combined(*, primary: Candidate, secondary: Candidate) -> dict[str, list]:
    """What the merged profile gets from both without asking (for the merge screen)."""
    return {
        "skills": _union(primary.skills, secondary.skills),
        "tags": _union(primary.tags, secondary.tags),
        "emails": [
            address
            for address in _union(
                [primary.email, secondary.email],
                primary.alternate_emails,
                secondary.alternate_emails,
            )
            if address
        ],
    }


def _snapshot(candidate: Candidate) -> dict:
    """The primary's values as JSON (dates as ISO strings, the owner as an id)."""
    snapshot = {}
    for name in SNAPSHOT_FIELDS:
        field = Candidate._meta.get_field(name)
        value = getattr(candidate, field.attname)
        if value is not None and isinstance(field, models.DateField):
            value = value.isoformat()  # DateTimeField is a DateField too
        snapshot[field.attname] = value
    contacted = candidate_last_contacted(candidate)
    snapshot[CONTACTED] = contacted.isoformat() if contacted else None
    return snapshot


def _restore(candidate: Candidate, snapshot: dict) -> None:
    for name in SNAPSHOT_FIELDS:
        field = Candidate._meta.get_field(name)
        if field.attname not in snapshot:
            continue
        value = snapshot[field.attname]
        if value is not None and isinstance(field, models.DateField):
            value = field.to_python(value)
        setattr(candidate, field.attname, value)
    if CONTACTED in snapshot:
        contacted = snapshot[CONTACTED]
        CandidateContact.objects.filter(candidate_id=candidate.pk).delete()
        if contacted:
            CandidateContact.objects.create(
                candidate_id=candidate.pk,
                organization_id=candidate.organization_id,
                last_contacted_at=datetime.fromisoformat(contacted),
            )


def _lock_pair(first_id: int, second_id: int) -> dict[int, Candidate]:
    # Lock in id order so that two merges of the same pair cannot deadlock.
    rows = Candidate.objects.select_for_update().filter(pk__in=[first_id, second_id]).order_by("pk")
    return {row.pk: row for row in rows}


def _move(*, mover: MergeMover, source_id: int, target_id: int, ids: list | None = None) -> list:
    model = apps.get_model(mover.label)
    rows = model._default_manager.filter(**{f"{mover.field}_id": source_id})
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    elif mover.unique_with:
        twins = model._default_manager.filter(
            **{f"{mover.field}_id": target_id},
            **{name: OuterRef(name) for name in mover.unique_with},
        )
        rows = rows.exclude(Exists(twins))
    moved = list(rows.values_list("pk", flat=True))
    if moved:
        model._default_manager.filter(pk__in=moved).update(**{f"{mover.field}_id": target_id})
    return moved


def candidate_merge(
    *,
    primary: Candidate,
    secondary: Candidate,
    field_choices: dict[str, Choice],
    actor: User | None,
) -> MergeRecord:
    """Merge `secondary` into `primary`, keeping for each differing field the value named in
    `field_choices` (missing entries keep `merge_default_choice`: the stricter status, else the
    primary's value unless it is empty)."""
    if primary.organization_id != secondary.organization_id or primary.pk == secondary.pk:
        raise MergeError("These two profiles cannot be merged.")
    with transaction.atomic():
        locked = _lock_pair(primary.pk, secondary.pk)
        primary, secondary = locked.get(primary.pk), locked.get(secondary.pk)
        if primary is None or secondary is None:
            raise MergeError("One of the profiles no longer exists.")
        if primary.merged_into_id or secondary.merged_into_id:
            raise MergeError("One of the profiles has already been merged into another.")

        snapshot = _snapshot(primary)
        # Every choice is made on the profiles as they are (as the merge form shows them):
        # deciding the "not now" date after the status was taken over would compare it with
        # a primary that says "not now" only because of the secondary.
        choices = {
            name: field_choices.get(name)
            or merge_default_choice(primary=primary, secondary=secondary, name=name)
            for name in merge_differences(primary=primary, secondary=secondary)
        }
        for name, choice in choices.items():
            if choice != "secondary":
                continue
            value = _value(secondary, name)
            if name.startswith(CUSTOM_PREFIX):
                primary.custom_fields = {
                    **primary.custom_fields,
                    name.removeprefix(CUSTOM_PREFIX): value,
                }
            else:
                setattr(primary, Candidate._meta.get_field(name).attname, value)
        if primary.status != Candidate.Status.NOT_NOW:
            # A date without its "not now" is only noise (it would show in exports), whichever
            # profile it came from.
            primary.not_now_until = None
        primary.skills = _union(primary.skills, secondary.skills)
        primary.tags = _union(primary.tags, secondary.tags)
        addresses = [
            snapshot["email"],
            secondary.email,
            *primary.alternate_emails,
            *secondary.alternate_emails,
        ]
        primary.alternate_emails = [
            address for address in _union(addresses) if address and address != primary.email
        ]
        contacted = candidate_last_contacted(secondary)
        if contacted:
            candidates_mark_contacted(candidate_ids=[primary.pk], at=contacted)

        # The secondary leaves the live set first: its email may now be the primary's, and
        # emails are unique among live candidates.
        secondary.merged_into = primary
        secondary.save(update_fields=["merged_into", "updated_at"])
        primary.save()

        moved: dict[str, Any] = {}
        for mover in MERGE_MOVERS:
            moved[mover.label] = _move(mover=mover, source_id=secondary.pk, target_id=primary.pk)
        hooks = {hook.name: hook.on_merge(primary, secondary) for hook in MERGE_HOOKS}
        closed = list(
            DuplicateSuggestion.objects.filter(
                Q(candidate_a_id=secondary.pk) | Q(candidate_b_id=secondary.pk),
                state=DuplicateSuggestion.State.OPEN,
            ).values_list("pk", flat=True)
        )
        DuplicateSuggestion.objects.filter(pk__in=closed).update(
            state=DuplicateSuggestion.State.MERGED
        )
        candidate_refresh_resume_text(candidate_id=primary.pk)
        candidate_refresh_resume_text(candidate_id=secondary.pk)

        record = MergeRecord.objects.create(
            organization_id=primary.organization_id,
            primary=primary,
            secondary=secondary,
            merged_by=actor,
            primary_snapshot=snapshot,
            moved={**moved, "closed_suggestions": closed, "hooks": hooks},
        )
        activity_record(
            candidate=primary,
            kind=Activity.Kind.MERGED,
            summary=f"Merged with {_describe(secondary)}",
            actor=actor,
            data={"merge_id": record.pk, "secondary_id": secondary.pk},
        )
        candidate_changed.send(sender=Candidate, candidate=primary, created=False)
    return record


def _describe(candidate: Candidate) -> str:
    name = candidate.full_name or "another profile"
    return f"{name} ({candidate.email})" if candidate.email else name


def merge_undo_blocker(*, record: MergeRecord) -> str:
    """Why this merge cannot be undone now ('' if it can)."""
    if record.undone_at:
        return "This merge has already been undone."
    involved = [record.primary_id, record.secondary_id]
    later = MergeRecord.objects.filter(
        Q(primary_id__in=involved) | Q(secondary_id__in=involved),
        organization_id=record.organization_id,
        undone_at__isnull=True,
        pk__gt=record.pk,
    )
    if later.exists():
        return "A later merge involves one of these profiles. Undo that merge first, then this one."
    return ""


def candidate_merge_undo(*, record: MergeRecord, actor: User | None) -> MergeRecord:
    """Put both profiles back as they were: the primary's values, the moved rows, the
    secondary live again — but never with fewer contact restrictions: the primary keeps the
    stricter status (and the hooks the stricter email preferences), which its timeline entry
    says. Refused while a later merge involves either profile."""
    with transaction.atomic():
        record = MergeRecord.objects.select_for_update().get(pk=record.pk)
        # Lock the profiles before looking for later merges: a merge of either that is under
        # way holds them, and once it has committed the check below sees it.
        locked = _lock_pair(record.primary_id, record.secondary_id)
        blocker = merge_undo_blocker(record=record)
        if blocker:
            raise MergeError(blocker)
        primary, secondary = locked[record.primary_id], locked[record.secondary_id]

        moved = record.moved
        for mover in MERGE_MOVERS:
            ids = moved.get(mover.label) or []
            if ids:
                _move(mover=mover, source_id=primary.pk, target_id=secondary.pk, ids=ids)
        DuplicateSuggestion.objects.filter(
            pk__in=moved.get("closed_suggestions") or [],
            state=DuplicateSuggestion.State.MERGED,
        ).update(state=DuplicateSuggestion.State.OPEN)
        kept: list[str] = []
        for hook in MERGE_HOOKS:
            what = hook.on_undo(primary, secondary, (moved.get("hooks") or {}).get(hook.name))
            if what:
                kept.append(what)

        status, not_now_until = primary.status, primary.not_now_until
        _restore(primary, record.primary_snapshot)
        if _keep_stricter_status(primary, status=status, not_now_until=not_now_until):
            what = f"status “{primary.get_status_display()}”"
            if primary.status == Candidate.Status.NOT_NOW and primary.not_now_until:
                what += f" until {primary.not_now_until:%-d %b %Y}"
            kept.insert(0, what)
        try:
            with transaction.atomic():
                primary.save()
                secondary.merged_into = None
                secondary.save(update_fields=["merged_into", "updated_at"])
        except IntegrityError:
            raise MergeError(
                "Another live profile now uses one of these email addresses; "
                "change it before undoing this merge."
            ) from None
        candidate_refresh_resume_text(candidate_id=primary.pk)
        candidate_refresh_resume_text(candidate_id=secondary.pk)

        record.undone_at = timezone.now()
        record.undone_by = actor
        record.save(update_fields=["undone_at", "undone_by"])
        for candidate, other in ((primary, secondary), (secondary, primary)):
            summary, data = f"Merge with {_describe(other)} undone", {"merge_id": record.pk}
            if candidate is primary and kept:
                summary += "; kept the stricter " + " and ".join(kept)
                data["kept"] = kept
            activity_record(
                candidate=candidate,
                kind=Activity.Kind.UNMERGED,
                summary=summary,
                actor=actor,
                data=data,
            )
        for candidate in (primary, secondary):
            candidate_changed.send(sender=Candidate, candidate=candidate, created=False)
    return record
