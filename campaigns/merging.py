"""What a candidate merge does to email preferences (registered as a merge hook in
CampaignsConfig.ready).

The preferences row is one per candidate, so when both profiles have one the secondary's cannot
move (its mover leaves it where it is). The merged person must then keep the *stricter* choice
of the two: an unsubscribe, an opted-out topic, a pause or a lower frequency made on either
profile still holds for the primary — "none to someone who opted out". What the person told
either profile they are interested in (role families, other roles, places, remote) is kept
too, so campaigns targeting interests still find them. The primary's values before the merge
are kept so that an undo puts them back exactly.
"""

from django.utils.dateparse import parse_date, parse_datetime

from campaigns.models import CandidateEmailPreference

_FREQUENCY_ORDER = {"": 0, "weekly": 1, "monthly": 2}  # higher is stricter
_INTEREST_LISTS = ("interested_role_families", "interested_roles", "interested_locations")


def _stamp(value) -> str | None:
    return value.isoformat() if value else None


def email_preferences_merge(primary, secondary) -> dict | None:
    """Fold the secondary's leftover preferences into the primary's; return the primary's
    previous values (JSON) for undo, or None when there was nothing to fold."""
    rows = {
        row.candidate_id: row
        for row in CandidateEmailPreference.objects.select_for_update().filter(
            organization_id=primary.organization_id, candidate_id__in=[primary.pk, secondary.pk]
        )
    }
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
    mine.save(
        update_fields=[
            "opted_out_topics",
            "unsubscribed_at",
            "paused_until",
            "frequency",
            *_INTEREST_LISTS,
            "open_to_remote",
        ]
    )
    return before


def email_preferences_unmerge(primary, secondary, before: dict | None) -> None:
    """Give the primary back the preferences it had before the merge."""
    if not before:
        return
    # Merges recorded before interests were folded in have no interest values to put back.
    interests = {
        name: before[name] for name in (*_INTEREST_LISTS, "open_to_remote") if name in before
    }
    CandidateEmailPreference.objects.filter(
        organization_id=primary.organization_id, candidate_id=primary.pk
    ).update(
        opted_out_topics=before["opted_out_topics"],
        paused_until=parse_date(before["paused_until"]) if before["paused_until"] else None,
        unsubscribed_at=(
            parse_datetime(before["unsubscribed_at"]) if before["unsubscribed_at"] else None
        ),
        frequency=before["frequency"],
        **interests,
    )
