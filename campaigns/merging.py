"""What a candidate merge does to email preferences and to the secondary's own campaign emails
(registered as merge hooks in CampaignsConfig.ready).

The preferences row is one per candidate, so when both profiles have one the secondary's cannot
move (its mover leaves it where it is). The merged person must then keep the *stricter* choice
of the two: an unsubscribe, an opted-out topic, a pause or a lower frequency made on either
profile still holds for the primary — "none to someone who opted out". What the person told
either profile they are interested in (role families, other roles, places, remote) is kept
too, so campaigns targeting interests still find them. The primary's values before the merge
are kept for undo, which gives back the interests but never loosens a restriction: the primary
keeps the stricter of its values now and before the merge.

Enrollments and messages move like the rest of the campaign history, except a "twin" in a
campaign the primary is in too, which stays with the secondary; so that the person does not
get that campaign twice, the merge stops the secondary's active enrollments and skips its
queued emails (reason "merged"), and undo resumes exactly those. Consents move as rows (a
consent withdrawn after the merge goes back withdrawn).
"""

from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime

from campaigns.models import Campaign, CandidateEmailPreference, Enrollment, Message
from campaigns.services.sequences import enrollments_stop

_FREQUENCY_ORDER = {"": 0, "weekly": 1, "monthly": 2}  # higher is stricter
_INTEREST_LISTS = ("interested_role_families", "interested_roles", "interested_locations")
_RESTRICTIONS = ("opted_out_topics", "unsubscribed_at", "paused_until", "frequency")


def _stamp(value) -> str | None:
    return value.isoformat() if value else None


def _restrictions(row: CandidateEmailPreference) -> tuple:
    return (sorted(row.opted_out_topics), row.unsubscribed_at, row.paused_until, row.frequency)


def _add_restrictions(mine: CandidateEmailPreference, theirs: CandidateEmailPreference) -> None:
    """Give `mine` every restriction of `theirs` it lacks: their opted-out topics, the earlier
    unsubscribe, the later pause, the lower frequency."""
    mine.opted_out_topics = sorted(set(mine.opted_out_topics) | set(theirs.opted_out_topics))
    if theirs.unsubscribed_at and (
        mine.unsubscribed_at is None or theirs.unsubscribed_at < mine.unsubscribed_at
    ):
        mine.unsubscribed_at = theirs.unsubscribed_at
    if theirs.paused_until and (
        mine.paused_until is None or theirs.paused_until > mine.paused_until
    ):
        mine.paused_until = theirs.paused_until
    if _FREQUENCY_ORDER.get(theirs.frequency, 0) > _FREQUENCY_ORDER.get(mine.frequency, 0):
        mine.frequency = theirs.frequency


def _locked_rows(primary, secondary) -> dict[int, CandidateEmailPreference]:
    return {
        row.candidate_id: row
        for row in CandidateEmailPreference.objects.select_for_update().filter(
            organization_id=primary.organization_id, candidate_id__in=[primary.pk, secondary.pk]
        )
    }


def email_preferences_merge(primary, secondary) -> dict | None:
    """Fold the secondary's leftover preferences into the primary's; return the primary's
    previous values (JSON) for undo, or None when there was nothing to fold."""
    rows = _locked_rows(primary, secondary)
    mine, theirs = rows.get(primary.pk), rows.get(secondary.pk)
    if mine is None or theirs is None:
        return None
    before = {
        "opted_out_topics": list(mine.opted_out_topics),
        "paused_until": _stamp(mine.paused_until),
        "unsubscribed_at": _stamp(mine.unsubscribed_at),
        "frequency": mine.frequency,
        **{name: list(getattr(mine, name)) for name in _INTEREST_LISTS},
        "open_to_remote": mine.open_to_remote,
    }
    for name in _INTEREST_LISTS:  # theirs appended to mine, in order, once each
        setattr(mine, name, list(dict.fromkeys([*getattr(mine, name), *getattr(theirs, name)])))
    mine.open_to_remote = mine.open_to_remote or theirs.open_to_remote
    _add_restrictions(mine, theirs)
    mine.save(update_fields=[*_RESTRICTIONS, *_INTEREST_LISTS, "open_to_remote"])
    return before


def email_preferences_unmerge(primary, secondary, before: dict | None) -> str | None:
    """Give the primary back the interests it had before the merge, and of each restriction
    the stricter of its value now and before the merge: an undo never loosens one (an
    unsubscribe, a topic opted out of, a pause or a lower frequency chosen since the merge
    stays). Returns "email preferences" when the primary keeps more than it had before."""
    rows = _locked_rows(primary, secondary)
    mine, theirs = rows.get(primary.pk), rows.get(secondary.pk)
    if before:
        if mine is None:
            return None
        previous = CandidateEmailPreference(
            opted_out_topics=before["opted_out_topics"],
            paused_until=parse_date(before["paused_until"]) if before["paused_until"] else None,
            unsubscribed_at=(
                parse_datetime(before["unsubscribed_at"]) if before["unsubscribed_at"] else None
            ),
            frequency=before["frequency"],
        )
        # Merges recorded before interests were folded in have no interest values to put back.
        for name in (*_INTEREST_LISTS, "open_to_remote"):
            if name in before:
                setattr(mine, name, before[name])
        _add_restrictions(mine, previous)
    elif mine is None and theirs is not None:
        # Only the secondary had a row: it moved to the primary and has just gone back, with
        # what was chosen through it since the merge. The primary keeps those restrictions.
        previous = CandidateEmailPreference()  # no row: the defaults
        mine = CandidateEmailPreference(
            organization_id=primary.organization_id, candidate_id=primary.pk
        )
        _add_restrictions(mine, theirs)
        if _restrictions(mine) == _restrictions(previous):
            return None
    else:
        return None
    mine.save()
    return "email preferences" if _restrictions(mine) != _restrictions(previous) else None


def secondary_campaigns_stop(primary, secondary) -> dict:
    """Stop what is left of the secondary's campaigns after its history moved (its "twin"
    enrollments and emails, in campaigns the primary is in too), so the person does not get a
    campaign twice: its active enrollments stop and its queued emails are skipped, reason
    "merged". Emails already being sent are the send path's (it skips merged-away profiles).
    Returns what it stopped, with where each enrollment was due, for undo."""
    # The enrollments first: a dispatcher holding one is rendering its email, which the
    # messages' query then sees.
    enrollments = list(
        Enrollment.objects.select_for_update(of=("self",))
        .filter(
            organization_id=secondary.organization_id,
            candidate_id=secondary.pk,
            status=Enrollment.Status.ACTIVE,
        )
        .order_by("pk")
        .values_list("pk", "next_run_at")
    )
    ids = [pk for pk, _ in enrollments]
    enrollments_stop(
        organization_id=secondary.organization_id,
        enrollment_ids=ids,
        reason=Enrollment.StopReason.MERGED,
    )
    # Also the queued emails of those enrollments that moved to the primary (the primary was
    # enrolled there but had no email yet): its own enrollment sends that step.
    messages = list(
        Message.objects.select_for_update(of=("self",))
        .filter(Q(candidate_id=secondary.pk) | Q(enrollment_id__in=ids))
        .filter(organization_id=secondary.organization_id, status=Message.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Message.objects.filter(pk__in=messages).update(
        status=Message.Status.SKIPPED, skip_reason=Message.SkipReason.MERGED
    )
    return {
        "enrollments": [[pk, _stamp(next_run_at)] for pk, next_run_at in enrollments],
        "messages": messages,
    }


def secondary_campaigns_resume(primary, secondary, stopped: dict | None) -> None:
    """Undo `secondary_campaigns_stop`: exactly the enrollments and emails it stopped that
    nothing else has changed since come back (the enrollments due when they were), unless
    their campaign has ended or was cancelled meanwhile."""
    if not stopped:
        return
    ended = [Campaign.Status.DONE, Campaign.Status.CANCELLED]
    due = {pk: next_run_at for pk, next_run_at in stopped["enrollments"]}
    resumed = (
        Enrollment.objects.select_for_update(of=("self",))
        .filter(
            organization_id=secondary.organization_id,
            pk__in=list(due),
            status=Enrollment.Status.STOPPED,
            stop_reason=Enrollment.StopReason.MERGED,
        )
        .exclude(campaign__status__in=ended)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in list(resumed):
        Enrollment.objects.filter(pk=pk).update(
            status=Enrollment.Status.ACTIVE,
            stop_reason="",
            finished_at=None,
            next_run_at=parse_datetime(due[pk]) if due[pk] else None,
        )
    # Queued again with no send task: the dispatcher's sweep hands them to one.
    requeued = list(
        Message.objects.select_for_update(of=("self",))
        .filter(
            organization_id=secondary.organization_id,
            pk__in=stopped["messages"],
            status=Message.Status.SKIPPED,
            skip_reason=Message.SkipReason.MERGED,
        )
        .exclude(campaign__status=Campaign.Status.CANCELLED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Message.objects.filter(pk__in=requeued).update(
        status=Message.Status.QUEUED, skip_reason="", enqueued_at=None
    )
