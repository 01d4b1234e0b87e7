"""Writes on candidate profiles and notes. Every write normalises its input (emails lower-cased,
phones in E.164, skills and tags trimmed and lower-cased, URLs validated) and records what
happened on the candidate's timeline through services.activities."""

import functools
import zoneinfo
from datetime import date
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from candidates.models import Activity, Attachment, Candidate, Note
from candidates.normalize import normalize_email, normalize_phone, profile_url_error, tags_clean
from candidates.services.activities import activity_record, candidates_mark_contacted
from candidates.services.custom_fields import custom_field_values_clean
from candidates.services.duplicates import duplicates_check_candidate
from candidates.signals import candidate_changed
from crm.models import Membership, Organization, Role, User
from crm.storage import stored_files_delete_on_commit

# Fields a profile form or an API client may set, with the words the timeline uses for them.
PROFILE_FIELDS = {
    "first_name": "first name",
    "last_name": "last name",
    "email": "email",
    "alternate_emails": "alternate emails",
    "phone": "phone",
    "city": "city",
    "country": "country",
    "time_zone": "time zone",
    "headline": "headline",
    "current_title": "title",
    "current_company": "company",
    "linkedin_url": "LinkedIn",
    "github_url": "GitHub",
    "portfolio_url": "portfolio",
    "skills": "skills",
    "tags": "tags",
    "seniority": "seniority",
    "source": "source",
    "source_detail": "source detail",
    "owner": "owner",
    "status": "status",
    "not_now_until": "not now until",
    "custom_fields": "custom fields",
}
URL_FIELDS = ("linkedin_url", "github_url", "portfolio_url")
DUPLICATE_EMAIL_MESSAGE = "Another candidate in this organisation already has this email address."


@functools.cache
def _time_zone_regions() -> dict[str, str]:
    """Time zone name -> ISO country code, from the system's tz database (zone.tab)."""
    regions: dict[str, str] = {}
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    parts = line.split("\t")
                    if len(parts) >= 3:
                        regions[parts[2]] = parts[0]
            break
    return regions


def organization_phone_region(*, organization: Organization) -> str | None:
    """The country a phone number without '+' is assumed to be in: the organisation's time
    zone's country (Europe/London -> GB). None when unknown (a '+country code' is required)."""
    return _time_zone_regions().get(organization.time_zone or "")


def organization_today(*, organization: Organization) -> date:
    """Today's date where the organisation is (its time zone), not on the server: "not now
    until tomorrow" entered at 00:30 in Auckland is still tomorrow there."""
    return timezone.localdate(timezone=organization.zone)


def candidate_email_taken(
    *, organization: Organization, email: str, exclude_id: int | None = None
) -> bool:
    if not email:
        return False
    others = Candidate.objects.live().filter(organization=organization, email__iexact=email)
    if exclude_id:
        others = others.exclude(pk=exclude_id)
    return others.exists()


def _owner_allowed(*, organization: Organization, owner: User) -> bool:
    return Membership.objects.filter(
        organization=organization, user=owner, role__in=[Role.RECRUITER, Role.ADMIN]
    ).exists()


def _normalize(*, organization: Organization, candidate: Candidate | None, fields: dict) -> dict:
    """Normalise and validate profile values; raise ValidationError({field: message})."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown candidate fields: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    clean = dict(fields)
    for name in ("first_name", "last_name", "city", "country", "headline", "current_title"):
        if name in clean:
            clean[name] = " ".join((clean[name] or "").split())
    for name in ("current_company", "source_detail"):
        if name in clean:
            clean[name] = " ".join((clean[name] or "").split())
    if "first_name" in clean and not clean["first_name"]:
        errors.setdefault("first_name", []).append("A first name is required.")
    if "email" in clean:
        clean["email"] = normalize_email(clean["email"])
        if clean["email"]:
            try:
                validate_email(clean["email"])
            except ValidationError:
                errors.setdefault("email", []).append("Enter a valid email address.")
            else:
                if candidate_email_taken(
                    organization=organization,
                    email=clean["email"],
                    exclude_id=candidate.pk if candidate else None,
                ):
                    errors.setdefault("email", []).append(DUPLICATE_EMAIL_MESSAGE)
    if "alternate_emails" in clean:
        values = clean["alternate_emails"] or []
        if isinstance(values, str):
            values = values.replace(";", ",").split(",")
        emails: list[str] = []
        for value in values:
            email = normalize_email(value)
            if not email or email in emails:
                continue
            try:
                validate_email(email)
            except ValidationError:
                errors.setdefault("alternate_emails", []).append(
                    f"“{email}” is not a valid email address."
                )
            emails.append(email)
        primary = clean.get("email", candidate.email if candidate else "")
        clean["alternate_emails"] = [email for email in emails if email != primary]
    if "phone" in clean:
        try:
            clean["phone"] = normalize_phone(
                clean["phone"], default_region=organization_phone_region(organization=organization)
            )
        except ValidationError as error:
            errors.setdefault("phone", []).extend(error.messages)
    validate_url = URLValidator(schemes=["http", "https"])
    for name in URL_FIELDS:
        if clean.get(name):
            value = clean[name].strip()
            if "://" not in value:
                value = f"https://{value}"
            try:
                validate_url(value)
            except ValidationError:
                errors.setdefault(name, []).append("Enter a valid web address.")
            else:
                if site_error := profile_url_error(name, value):
                    errors.setdefault(name, []).append(site_error)
            clean[name] = value
        elif name in clean:
            clean[name] = ""
    for name in ("skills", "tags"):
        if name in clean:
            try:
                clean[name] = tags_clean(clean[name] or [])
            except ValidationError as error:
                errors.setdefault(name, []).extend(error.messages)
    for name, choices in (
        ("seniority", Candidate.Seniority.values),
        ("source", Candidate.Source.values),
        ("status", Candidate.Status.values),
    ):
        if name in clean:
            clean[name] = clean[name] or ("" if name == "seniority" else None)
            if clean[name] is None:
                clean.pop(name)
            elif clean[name] and clean[name] not in choices:
                errors.setdefault(name, []).append("Choose a valid option.")
    status = clean.get("status", candidate.status if candidate else Candidate.Status.ACTIVE)
    if "status" in clean or "not_now_until" in clean:
        until = clean.get("not_now_until", candidate.not_now_until if candidate else None)
        if status == Candidate.Status.NOT_NOW:
            if not until:
                errors.setdefault("not_now_until", []).append(
                    "Say until when the candidate does not want to hear from you."
                )
            elif (
                isinstance(until, date)
                and until <= organization_today(organization=organization)
                and until != (candidate.not_now_until if candidate else None)
            ):
                errors.setdefault("not_now_until", []).append("Choose a date in the future.")
        else:
            clean["not_now_until"] = None
    if clean.get("owner") is not None and not _owner_allowed(
        organization=organization, owner=clean["owner"]
    ):
        errors.setdefault("owner", []).append("The owner must be a recruiter or admin here.")
    if "custom_fields" in clean:
        try:
            clean["custom_fields"] = custom_field_values_clean(
                organization=organization,
                values=clean["custom_fields"] or {},
                current=candidate.custom_fields if candidate else {},
            )
        except ValidationError as error:
            errors.setdefault("custom_fields", []).extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return clean


def _save(candidate: Candidate, **kwargs) -> None:
    """Save, turning the per-organisation email constraint (a concurrent writer) into the
    same ValidationError the pre-check gives."""
    try:
        with transaction.atomic():
            candidate.save(**kwargs)
    except IntegrityError as error:
        if "candidate_email_unique_per_org" in str(error):
            raise ValidationError({"email": DUPLICATE_EMAIL_MESSAGE}) from error
        raise


def _after_candidate_saved(candidate: Candidate, *, created: bool, identity_changed: bool) -> None:
    """The one place that reacts to a saved profile: a new or re-identified candidate (email,
    phone, name or company changed) is checked for duplicates at once (one indexed statement,
    so the profile shows the suggestion right away); other apps (smart pools) hear about every
    change through `candidate_changed`."""
    if created or identity_changed:
        duplicates_check_candidate(candidate=candidate)
    candidate_changed.send(sender=Candidate, candidate=candidate, created=created)


@transaction.atomic
def candidate_create(*, organization: Organization, actor: User | None, **fields) -> Candidate:
    clean = _normalize(organization=organization, candidate=None, fields=fields)
    candidate = Candidate(organization=organization, **clean)
    _save(candidate)
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.CREATED,
        actor=actor,
        summary=f"Added by {actor}" if actor else "Profile created",
        data={"source": candidate.source},
    )
    _after_candidate_saved(candidate, created=True, identity_changed=True)
    return candidate


IDENTITY_FIELDS = {"first_name", "last_name", "email", "phone", "current_company"}


def _display(candidate: Candidate, name: str):
    if name == "owner":
        return str(candidate.owner) if candidate.owner_id else ""
    if name == "status":
        return candidate.get_status_display()
    return getattr(candidate, name)


@transaction.atomic
def candidate_update(*, candidate: Candidate, actor: User | None, **fields) -> Candidate:
    """Change profile fields. Timeline: `status_changed` and `owner_changed` for those, one
    `edited` entry naming every other changed field. Nothing changed, nothing recorded."""
    organization = candidate.organization
    clean = _normalize(organization=organization, candidate=candidate, fields=fields)
    changed = [name for name, value in clean.items() if getattr(candidate, name) != value]
    if not changed:
        return candidate
    before = {name: _display(candidate, name) for name in ("status", "owner")}
    old_status = candidate.status
    for name in changed:
        setattr(candidate, name, clean[name])
    _save(candidate)
    if "status" in changed:
        _record_status(candidate=candidate, actor=actor, old_status=old_status)
    if "owner" in changed:
        activity_record(
            candidate=candidate,
            kind=Activity.Kind.OWNER_CHANGED,
            actor=actor,
            summary=f"Owner: {before['owner'] or 'Unassigned'} → {_display(candidate, 'owner') or 'Unassigned'}",
            data={"from": before["owner"], "to": _display(candidate, "owner")},
        )
    edited = [name for name in changed if name not in {"status", "owner", "not_now_until"}]
    if "not_now_until" in changed and "status" not in changed and candidate.not_now_until:
        edited.append("not_now_until")
    if edited:
        labels = [PROFILE_FIELDS[name] for name in edited]
        activity_record(
            candidate=candidate,
            kind=Activity.Kind.EDITED,
            actor=actor,
            summary="Changed " + ", ".join(labels),
            data={"fields": edited},
        )
    _after_candidate_saved(
        candidate, created=False, identity_changed=bool(IDENTITY_FIELDS & set(changed))
    )
    return candidate


def _record_status(*, candidate: Candidate, actor: User | None, old_status: str) -> None:
    summary = f"{Candidate.Status(old_status).label} → {candidate.get_status_display()}"
    if candidate.status == Candidate.Status.NOT_NOW and candidate.not_now_until:
        summary += f" until {candidate.not_now_until:%-d %b %Y}"
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.STATUS_CHANGED,
        actor=actor,
        summary=summary,
        data={
            "from": old_status,
            "to": candidate.status,
            "until": candidate.not_now_until.isoformat() if candidate.not_now_until else None,
        },
    )


def candidate_set_status(
    *, candidate: Candidate, actor: User | None, status: str, not_now_until: date | None = None
) -> Candidate:
    return candidate_update(
        candidate=candidate, actor=actor, status=status, not_now_until=not_now_until
    )


# --- notes -----------------------------------------------------------------------------------


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write something first."})
    if len(body) > 20000:
        raise ValidationError({"body": "Keep a note under 20,000 characters."})
    return body


def require_note_author(*, note: Note, actor: User) -> None:
    if note.author_id != actor.pk:
        raise PermissionDenied("Only the author can change this note.")


@transaction.atomic
def note_create(
    *, candidate: Candidate, author: User, body: str, pinned: bool = False, contact: str = ""
) -> Note:
    """A note; with `contact` (a Note.Contact) it also records a call, meeting or message,
    which moves the candidate's "last contacted"."""
    if contact and contact not in Note.Contact.values:
        raise ValidationError({"contact": "Choose what kind of contact this was."})
    note = Note.objects.create(
        organization_id=candidate.organization_id,
        candidate=candidate,
        author=author,
        body=_clean_body(body),
        contact=contact,
        pinned=pinned,
    )
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.NOTE_ADDED,
        actor=author,
        summary=note.body[:200],
        data={"contact": contact} if contact else None,
        note=note,
        occurred_at=note.created_at,
    )
    if contact:
        candidates_mark_contacted(candidate_ids=[candidate.pk], at=note.created_at)
    return note


def note_update(*, note: Note, actor: User, body: str) -> Note:
    """The author rewrites a note; the timeline shows the current body."""
    require_note_author(note=note, actor=actor)
    note.body = _clean_body(body)
    note.save(update_fields=["body", "updated_at"])
    return note


def note_delete(*, note: Note, actor: User) -> None:
    """The author deletes a note; its timeline entry goes with it."""
    require_note_author(note=note, actor=actor)
    note.delete()


def note_pin(*, note: Note, actor: User, pinned: bool = True) -> Note:
    """Pin a note to the top of the profile (any recruiter may: pinning edits no words)."""
    note.pinned = pinned
    note.save(update_fields=["pinned"])
    return note


def candidates_delete(*, candidate_ids: list[int]) -> None:
    """Delete candidates — with everything that cascades from them, the profiles merged into
    them included — and, once the deletion commits, their stored files (a rolled-back
    deletion keeps them). The paths that delete candidates go through here (bulk delete, the
    admin); deleting a whole organisation removes its files itself
    (crm.services.organization_delete)."""
    ids = list(candidate_ids)
    # Merging moves files to the surviving profile; a merged-away one may still hold some
    # if it was merged before that (or by hand): theirs go too.
    names = list(
        Attachment.objects.filter(
            Q(candidate_id__in=ids) | Q(candidate__merged_into_id__in=ids)
        ).values_list("file", flat=True)
    )
    Candidate.objects.filter(id__in=ids).delete()
    stored_files_delete_on_commit(names)
