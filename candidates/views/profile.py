"""Candidate profiles: the profile page with its timeline, the new/edit forms, and notes.

Note actions are htmx-enhanced (they swap the profile's activity column) and work without
JavaScript as POST + redirect.
"""

from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from candidates.forms import CandidateForm, NoteEditForm, NoteForm
from candidates.models import Activity, CustomField, Note
from candidates.normalize import phone_display
from candidates.panels import PROFILE_PANELS
from candidates.selectors import (
    TIMELINE_FILTERS,
    candidate_get,
    candidate_get_or_merged,
    candidate_pinned_notes,
    candidate_timeline,
    candidate_timeline_merged_from,
    note_get,
)
from candidates.services import profiles
from candidates.services.custom_fields import custom_field_value_clean, custom_fields_active
from crm.permissions import recruiter_required


def _parse_before(value: str) -> tuple[datetime, int] | None:
    """`?before=<ISO occurred_at>,<id>`; anything unreadable means "from the newest"."""
    stamp, _, activity_id = (value or "").replace(" ", "+").rpartition(",")
    try:
        occurred_at = datetime.fromisoformat(stamp)
        activity_id = int(activity_id)
    except ValueError:
        return None
    if timezone.is_naive(occurred_at):
        occurred_at = timezone.make_aware(occurred_at, UTC)
    try:
        occurred_at = occurred_at.astimezone(UTC)  # PostgreSQL refuses offsets past ±15:59
    except OverflowError:  # past the ends of time in UTC: no activity's
        return None
    return occurred_at, activity_id


TIMELINE_ICONS = {
    Activity.Kind.CREATED: "person-plus",
    Activity.Kind.EDITED: "pencil",
    Activity.Kind.STATUS_CHANGED: "flag",
    Activity.Kind.NOTE_ADDED: "journal-text",
    Activity.Kind.ATTACHMENT_ADDED: "paperclip",
    Activity.Kind.IMPORTED: "box-arrow-in-down",
    Activity.Kind.MERGED: "union",
    Activity.Kind.UNMERGED: "arrow-counterclockwise",
    Activity.Kind.TAGGED: "tags",
    Activity.Kind.OWNER_CHANGED: "person-check",
    Activity.Kind.POOL_ADDED: "collection",
    Activity.Kind.POOL_REMOVED: "dash-circle",
    Activity.Kind.STAGE_CHANGED: "signpost-split",
    Activity.Kind.EMAIL_SENT: "envelope",
    Activity.Kind.EMAIL_OPENED: "envelope-open",
    Activity.Kind.EMAIL_CLICKED: "cursor",
    Activity.Kind.EMAIL_REPLIED: "reply",
    Activity.Kind.EMAIL_AUTO_REPLIED: "robot",
    Activity.Kind.EMAIL_BOUNCED: "exclamation-triangle",
    Activity.Kind.UNSUBSCRIBED: "bell-slash",
    Activity.Kind.CONSENT_CHANGED: "shield-check",
    Activity.Kind.FOLLOW_UP: "alarm",
    Activity.Kind.ENROLLMENT: "diagram-3",
}
# A note that records a contact is headed by what the contact was: (heading, icon).
CONTACT_HEADINGS = {
    Note.Contact.CALL: ("Call", "telephone"),
    Note.Contact.MEETING: ("Meeting", "people"),
    Note.Contact.MESSAGE: ("Message", "chat-left-text"),
    Note.Contact.EMAIL: ("Email outside Rapport", "envelope-paper"),
}
EDITED_AFTER = timedelta(minutes=1)


def _mark_edited(note) -> None:
    note.was_edited = note.updated_at - note.created_at > EDITED_AFTER


def _edit_place(note, timeline) -> str:
    """Where the note being edited shows its form: the Pinned card, its timeline entry, or
    (when neither is on this page) a card of its own at the top."""
    if note is None or note.pinned:
        return "pinned"
    if any(activity.note_id == note.pk for activity in timeline):
        return "timeline"
    return "standalone"


def _activity_context(request, candidate, *, note_form=None, editing=None, edit_form=None):
    before = _parse_before(request.GET.get("before", ""))
    show = request.GET.get("show", "")
    show = show if show in TIMELINE_FILTERS else ""
    timeline, older = candidate_timeline(
        candidate=candidate, user=request.user, before=before, show=show
    )
    pinned_notes = candidate_pinned_notes(candidate=candidate)
    merged_from = candidate_timeline_merged_from(candidate=candidate, activities=timeline)
    for activity in timeline:
        activity.icon = TIMELINE_ICONS.get(activity.kind, "dot")
        activity.merged_from = merged_from.get(activity.pk, "")
        if activity.note is not None:
            _mark_edited(activity.note)
            if activity.note.contact in CONTACT_HEADINGS:
                activity.heading, activity.icon = CONTACT_HEADINGS[activity.note.contact]
    for note in pinned_notes:
        _mark_edited(note)
    return {
        "candidate": candidate,
        "timeline": timeline,
        "older_cursor": f"{older[0].isoformat()},{older[1]}" if older else "",
        "paged": before is not None,
        # The timeline's filter (?show=notes…): links without JavaScript, swapped by htmx.
        "timeline_show": show,
        "timeline_filters": [("", "All")]
        + [(key, label) for key, (label, _kinds) in TIMELINE_FILTERS.items()],
        "pinned_notes": pinned_notes,
        "note_form": note_form or NoteForm(),
        "editing_note": editing,
        "edit_place": _edit_place(editing, timeline),
        "note_edit_form": edit_form,
    }


def _outside_limits(field, value) -> bool:
    """A stored number its field's limits no longer allow (they changed after it was saved)."""
    if field.field_type != CustomField.FieldType.NUMBER:
        return False
    try:
        custom_field_value_clean(field=field, value=value)
    except ValidationError:
        return True
    return False


def _custom_field_values(candidate, organization):
    """(field, value, outside its limits) for the organisation's active custom fields that
    have a value."""
    return [
        (field, value, _outside_limits(field, value))
        for field in custom_fields_active(organization=organization)
        if (value := candidate.custom_fields.get(field.key)) not in (None, "")
    ]


def _render_profile(request, candidate, **activity):
    context = _activity_context(request, candidate, **activity)
    if request.htmx and not request.htmx.boosted:
        return render(request, "candidates/candidate_detail.html#activity", context)
    context["profile_panels"] = PROFILE_PANELS
    # The organisation's today (its time zone is the current one): what panels mark as due.
    context["today"] = timezone.localdate()
    # request.organization: candidate.organization would be read again, one more query.
    context["custom_values"] = _custom_field_values(candidate, request.organization)
    context["phone_display"] = phone_display(candidate.phone)
    return render(request, "candidates/candidate_detail.html", context)


def _profile_url(candidate, anchor="activity"):
    url = reverse("candidates:detail", args=[candidate.organization.slug, candidate.pk])
    return f"{url}#{anchor}" if anchor else url


@require_safe
def candidate_detail(request, org_slug, candidate_id):
    """A merged-away profile's old address (bookmarks, emails, exports) leads to the profile
    it was merged into."""
    candidate = candidate_get_or_merged(
        organization=request.organization, candidate_id=candidate_id
    )
    if candidate.pk != candidate_id:
        messages.info(request, "That profile was merged into this one.")
        return redirect(_profile_url(candidate, anchor=""))
    return _render_profile(request, candidate)


@recruiter_required
def candidate_new(request, org_slug):
    form = CandidateForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        try:
            candidate = profiles.candidate_create(
                organization=request.organization, actor=request.user, **form.profile_values()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"{candidate.full_name} was added.")
            return redirect(_profile_url(candidate, anchor=""))
    return render(request, "candidates/candidate_form.html", {"form": form, "candidate": None})


@recruiter_required
def candidate_edit(request, org_slug, candidate_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    form = CandidateForm(
        request.POST or None, organization=request.organization, candidate=candidate
    )
    if request.method == "POST" and form.is_valid():
        try:
            profiles.candidate_update(
                candidate=candidate, actor=request.user, **form.profile_values()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Profile saved.")
            return redirect(_profile_url(candidate, anchor=""))
    return render(request, "candidates/candidate_form.html", {"form": form, "candidate": candidate})


@require_POST
@recruiter_required
def note_add(request, org_slug, candidate_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note = profiles.note_create(
                candidate=candidate, author=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            if request.htmx:
                response = _render_profile(request, candidate)
                if note.contact:  # the header's "Last contacted" changes too
                    candidate = candidate_get_or_merged(
                        organization=request.organization, candidate_id=candidate.pk
                    )
                    response.content += render_to_string(
                        "candidates/candidate_detail.html#last_contacted",
                        {"candidate": candidate, "swap_oob": True},
                        request=request,
                    ).encode()
                return response
            messages.success(request, "Contact logged." if note.contact else "Note added.")
            return redirect(_profile_url(candidate))
    return _render_profile(request, candidate, note_form=form)


@recruiter_required
def note_edit(request, org_slug, candidate_id, note_id):
    """GET shows the note as a form in place (the whole profile without JavaScript); POST
    saves it. Only the author may edit."""
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    note = note_get(candidate=candidate, note_id=note_id)
    profiles.require_note_author(note=note, actor=request.user)
    form = NoteEditForm(request.POST or None, initial={"body": note.body})
    if request.method == "POST" and form.is_valid():
        profiles.note_update(note=note, actor=request.user, body=form.cleaned_data["body"])
        if request.htmx:
            return _render_profile(request, candidate)
        messages.success(request, "Note saved.")
        return redirect(_profile_url(candidate, anchor=f"timeline-note-{note.pk}"))
    return _render_profile(request, candidate, editing=note, edit_form=form)


@require_POST
@recruiter_required
def note_delete(request, org_slug, candidate_id, note_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    note = note_get(candidate=candidate, note_id=note_id)
    profiles.note_delete(note=note, actor=request.user)
    if request.htmx:
        return _render_profile(request, candidate)
    messages.success(request, "Note deleted.")
    return redirect(_profile_url(candidate))


@require_POST
@recruiter_required
def note_pin(request, org_slug, candidate_id, note_id):
    candidate = candidate_get(organization=request.organization, candidate_id=candidate_id)
    note = note_get(candidate=candidate, note_id=note_id)
    pinned = request.POST.get("pinned", "1") != "0"
    profiles.note_pin(note=note, actor=request.user, pinned=pinned)
    if request.htmx:
        return _render_profile(request, candidate)
    messages.success(request, "Note pinned." if pinned else "Note unpinned.")
    return redirect(_profile_url(candidate))
