"""What candidates do from their emails' links: unsubscribe, resubscribe, set preferences.

Every change is recorded as an analytics.EngagementEvent and on the candidate's timeline."""

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from django.db import connection, transaction
from django.utils import timezone

from analytics.services import engagement_event_record
from campaigns.models import CandidateEmailPreference, Enrollment, Suppression, Topic
from campaigns.services import tokens
from campaigns.services.role_families import role_families_for
from campaigns.services.sequences import ACTIVE_STATUSES, enrollments_stop_for_candidates
from campaigns.services.topics import topics_for
from candidates.models import Activity, Candidate
from candidates.services.activities import activity_record
from candidates.signals import candidate_changed
from crm.models import Organization

# What the candidate-facing pages and services read of a candidate; any other field is loaded
# on access, like a deferred field.
_PAGE_FIELDS = ("first_name", "email", "current_title", "city", "merged_into")


@lru_cache(maxsize=1)
def _candidate_sql() -> tuple[str, list[str], list[str]]:
    """One SELECT of a candidate (the page fields) with its organisation (every field), written
    from the models' metadata once: a one-click unsubscribe burst would otherwise spend ~1 ms of
    CPU per request letting the ORM compile this query (a quarter of a web worker's time)."""
    # In the model's field order: `Model.from_db` pairs the values of a partial row with the
    # concrete fields in that order (in any other, `city` came back as the job title).
    wanted = {"id", "organization", *_PAGE_FIELDS}
    candidate = [field for field in Candidate._meta.concrete_fields if field.name in wanted]
    organization = list(Organization._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = [f"c.{quote(f.column)}" for f in candidate]
    columns += [f"o.{quote(f.column)}" for f in organization]
    # Identifiers from the models, quoted; the values are parameters.
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Candidate._meta.db_table)} c "  # noqa: S608
        f"JOIN {quote(Organization._meta.db_table)} o ON o.id = c.organization_id "
        "WHERE c.organization_id = %s AND c.id = %s"
    )
    return sql, candidate, organization


def _from_row(model, fields, values):
    converted = []
    for field, value in zip(fields, values, strict=True):
        converter = getattr(field, "from_db_value", None)
        converted.append(converter(value, None, connection) if converter else value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _candidate_with_organization(organization_id: int, candidate_id: int) -> Candidate | None:
    sql, candidate_fields, organization_fields = _candidate_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization_id, candidate_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(candidate_fields)
    candidate = _from_row(Candidate, candidate_fields, row[:split])
    candidate.organization = _from_row(Organization, organization_fields, row[split:])
    return candidate


def candidate_from_token(token: str) -> tuple[Organization, Candidate, int] | None:
    """(organisation, candidate, message id) named by a candidate-link token, or None for a
    forged, expired or foreign token, or a candidate that no longer exists. One query: the
    organisation comes with the candidate, both named by the token (tenant by construction)."""
    content = tokens.token_read(token, salt=tokens.CANDIDATE_SALT)
    if content is None or not content.candidate_id:
        return None
    candidate = _candidate_with_organization(content.organization_id, content.candidate_id)
    if candidate is None:
        return None
    # A profile merged into another one: its links act for the surviving profile.
    candidate = candidate_surviving(candidate)
    return candidate.organization, candidate, content.message_id


def candidate_surviving(candidate: Candidate) -> Candidate:
    """The profile that stands for this person now: `candidate`, or the profile it was merged
    into (through later merges too). What the person asks for by way of an old profile (an
    unsubscribe, a complaint) must reach the profile that is still sent email."""
    for _ in range(20):
        if candidate.merged_into_id is None:
            break
        survivor = _candidate_with_organization(candidate.organization_id, candidate.merged_into_id)
        if survivor is None:
            break
        candidate = survivor
    return candidate


def preference_for(*, candidate: Candidate) -> CandidateEmailPreference:
    preference, _ = CandidateEmailPreference.objects.get_or_create(
        organization_id=candidate.organization_id, candidate=candidate
    )
    return preference


def preference_read(*, candidate: Candidate) -> CandidateEmailPreference:
    """The candidate's preferences without writing anything: the saved row, or the defaults
    (unsaved) — a page shown on GET must not change state, not even by creating a row."""
    return CandidateEmailPreference.objects.filter(
        organization_id=candidate.organization_id, candidate=candidate
    ).first() or CandidateEmailPreference(
        organization_id=candidate.organization_id, candidate=candidate
    )


def candidate_is_unsubscribed(*, candidate: Candidate) -> bool:
    """Read only: a page shown on GET must not create the preference row."""
    return CandidateEmailPreference.objects.filter(
        candidate=candidate, unsubscribed_at__isnull=False
    ).exists()


@dataclass(frozen=True)
class _UnsubscribedMessage:
    pk: int
    campaign_id: int | None
    campaign_name: str | None


# The email the unsubscribe link came in: its first unsubscribe time set (if not set yet) and
# its campaign's name read, in one round trip; only in the candidate's organisation. The id
# comes from a signed token or from the ESP's own message, so it is not matched against the
# candidate: after a merge the email may still belong to the merged-away profile.
_MESSAGE_SQL = """
WITH marked AS (
    UPDATE campaigns_message SET unsubscribed_at = %s
    WHERE id = %s AND organization_id = %s AND unsubscribed_at IS NULL
)
SELECT m.id, m.campaign_id, c.name FROM campaigns_message m
LEFT JOIN campaigns_campaign c ON c.id = m.campaign_id
WHERE m.id = %s AND m.organization_id = %s
"""


def _message_unsubscribe(
    candidate: Candidate, message_id: int, now: datetime
) -> _UnsubscribedMessage | None:
    if not message_id:
        return None
    key = [message_id, candidate.organization_id]
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_SQL, [now, *key, *key])
        row = cursor.fetchone()
    return _UnsubscribedMessage(*row) if row else None


# Set `unsubscribed_at` unless it is set already, creating the row (with the model's defaults)
# if there is none, in one statement; it returns a row only when it changed something. The row
# lock it takes holds until the commit, so of two concurrent unsubscribes only one gets a row.
_UNSUBSCRIBE_SQL = """
INSERT INTO campaigns_candidateemailpreference AS p ({columns}) VALUES ({values})
ON CONFLICT (candidate_id) DO UPDATE
    SET unsubscribed_at = EXCLUDED.unsubscribed_at, updated_at = EXCLUDED.updated_at
    WHERE p.unsubscribed_at IS NULL
RETURNING p.id
"""


def _preference_unsubscribe(*, candidate: Candidate, now) -> bool:
    """Whether this call unsubscribed the candidate (False: they were already)."""
    new = CandidateEmailPreference(
        organization_id=candidate.organization_id,
        candidate_id=candidate.pk,
        unsubscribed_at=now,
        updated_at=now,
    )
    fields = [f for f in CandidateEmailPreference._meta.concrete_fields if not f.primary_key]
    sql = _UNSUBSCRIBE_SQL.format(
        columns=", ".join(connection.ops.quote_name(f.column) for f in fields),
        values=", ".join(["%s"] * len(fields)),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [f.get_db_prep_save(getattr(new, f.attname), connection) for f in fields]
        )
        return cursor.fetchone() is not None


@transaction.atomic
def candidate_unsubscribe(*, candidate: Candidate, message_id: int = 0, source: str) -> bool:
    """Unsubscribe from all campaign email. Returns False when already unsubscribed (nothing
    changes twice). Stops the candidate's active enrollments."""
    now = timezone.now()
    candidate = candidate_surviving(candidate)
    if not _preference_unsubscribe(candidate=candidate, now=now):
        return False
    if candidate.email:
        # An existing suppression of that address (a bounce, an earlier unsubscribe) stays.
        Suppression.objects.bulk_create(
            [
                Suppression(
                    organization_id=candidate.organization_id,
                    email=candidate.email.lower(),
                    reason=Suppression.Reason.UNSUBSCRIBED,
                    detail=source,
                )
            ],
            ignore_conflicts=True,
        )
    enrollments_stop_for_candidates(
        organization_id=candidate.organization_id,
        candidate_ids=[candidate.pk],
        reason=Enrollment.StopReason.UNSUBSCRIBED,
    )
    message = _message_unsubscribe(candidate, message_id, now)
    engagement_event_record(
        organization_id=candidate.organization_id,
        kind="unsubscribed",
        candidate_id=candidate.pk,
        campaign_id=message.campaign_id if message else None,
        message_id=message.pk if message else None,
        data={"source": source},
    )
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.UNSUBSCRIBED,
        summary="Unsubscribed from campaign email"
        + (f" ({message.campaign_name})" if message and message.campaign_name else ""),
        data={"source": source},
    )
    return True


def candidate_still_blocked(*, candidate: Candidate) -> str:
    """Why campaign email still cannot reach the candidate after a resubscribe ("" when it
    can): their address bounced, or their mail provider reported our email as spam. Those
    suppressions are not theirs to lift from a link (a complaint may come from whoever reads
    the mailbox): the page says so instead of "subscribed again" alone."""
    if not candidate.email:
        return ""
    reason = (
        Suppression.objects.filter(
            organization_id=candidate.organization_id,
            email=candidate.email.lower(),
            reason__in=[Suppression.Reason.BOUNCED, Suppression.Reason.COMPLAINED],
        )
        .values_list("reason", flat=True)
        .first()
    )
    return reason or ""


@transaction.atomic
def candidate_resubscribe(*, candidate: Candidate) -> bool:
    preference = preference_for(candidate=candidate)
    if preference.unsubscribed_at is None:
        return False
    preference.unsubscribed_at = None
    preference.save(update_fields=["unsubscribed_at", "updated_at"])
    if candidate.email:
        Suppression.objects.filter(
            organization_id=candidate.organization_id,
            email=candidate.email.lower(),
            reason=Suppression.Reason.UNSUBSCRIBED,
        ).delete()
    engagement_event_record(
        organization_id=candidate.organization_id, kind="resubscribed", candidate_id=candidate.pk
    )
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.CONSENT_CHANGED,
        summary="Resubscribed to campaign email",
    )
    return True


def archived_topics_received(*, candidate: Candidate) -> list[Topic]:
    """Archived topics that the candidate still gets email about: those of the launched
    campaigns they are active in (a sequence that was running when its topic was archived; a
    draft on an archived topic cannot launch). The preference centre offers these too, so that
    one can opt out of what one gets; other archived topics are not offered, and their opt-outs
    stay as they are. One query."""
    receiving = Enrollment.objects.filter(
        organization_id=candidate.organization_id,
        candidate_id=candidate.pk,
        status=Enrollment.Status.ACTIVE,
        campaign__status__in=ACTIVE_STATUSES,
    ).values("campaign__topic")
    return list(
        Topic.objects.filter(
            organization_id=candidate.organization_id,
            archived_at__isnull=False,
            key__in=receiving,
        )
    )


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    # The same day of the month, or the month's last day when it has fewer (31 Jan + 1 → 28/29 Feb).
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def pause_end(preference: CandidateEmailPreference, *, organization) -> date | None:
    """The day a candidate's pause ends, while it lasts: campaign emails wait until then, on
    the organisation's date, as the send path holds them (`is_paused_on`)."""
    if preference.is_paused_on(timezone.localdate(timezone=organization.zone)):
        return preference.paused_until
    return None


@transaction.atomic
def candidate_preferences_update(
    *,
    candidate: Candidate,
    topics: list[str],
    pause_months: int,
    current_title: str,
    city: str,
    frequency: str = "",
    role_families: list[str] | None = None,
    interested_roles: list[str] | None = None,
    interested_locations: list[str] | None = None,
    open_to_remote: bool = False,
) -> CandidateEmailPreference:
    """Save the preference centre: the topics the candidate wants (the rest are opted out),
    how often, an optional pause, what they are interested in (role families, other roles,
    places, remote) and their current title and city."""
    preference = preference_for(candidate=candidate)
    offered = [
        topic.key
        for topic in topics_for(organization=candidate.organization)
        + archived_topics_received(candidate=candidate)
    ]
    # Other archived topics are not offered: their opt-outs stay as they were.
    kept = [key for key in preference.opted_out_topics or [] if key not in offered]
    preference.opted_out_topics = kept + [key for key in offered if key not in topics]
    families = [f.key for f in role_families_for(organization=candidate.organization)]
    # Archived families are not offered: a candidate who chose one keeps it.
    chosen = set(role_families or [])
    preference.interested_role_families = [
        key for key in preference.interested_role_families or [] if key not in families
    ] + [key for key in families if key in chosen]
    if pause_months:
        today = timezone.localdate(timezone=candidate.organization.zone)
        preference.paused_until = _add_months(today, pause_months)
    elif pause_months == 0:
        preference.paused_until = None
    preference.frequency = frequency
    preference.interested_roles = list(interested_roles or [])
    preference.interested_locations = list(interested_locations or [])
    preference.open_to_remote = open_to_remote
    preference.save(
        update_fields=[
            "opted_out_topics",
            "paused_until",
            "frequency",
            "interested_role_families",
            "interested_roles",
            "interested_locations",
            "open_to_remote",
            "updated_at",
        ]
    )
    changed = {}
    if current_title != candidate.current_title:
        changed["current_title"] = current_title
    if city != candidate.city:
        changed["city"] = city
    if changed:
        Candidate.objects.filter(pk=candidate.pk).update(**changed, updated_at=timezone.now())
        for name, value in changed.items():
            setattr(candidate, name, value)
        # As any other edit of the profile: smart pools (and their auto-joins) follow the
        # new title or city.
        candidate_changed.send(sender=Candidate, candidate=candidate, created=False)
    engagement_event_record(
        organization_id=candidate.organization_id,
        kind="preferences_updated",
        candidate_id=candidate.pk,
        data={
            "opted_out_topics": preference.opted_out_topics,
            "paused_until": preference.paused_until.isoformat()
            if preference.paused_until
            else None,
            "changed": sorted(changed),
            "frequency": preference.frequency,
            "interested_role_families": preference.interested_role_families,
            "interested_roles": preference.interested_roles,
            "interested_locations": preference.interested_locations,
            "open_to_remote": preference.open_to_remote,
        },
    )
    summary = "Updated email preferences"
    if changed:
        summary += " and " + ", ".join(name.replace("_", " ") for name in sorted(changed))
    activity_record(candidate=candidate, kind=Activity.Kind.CONSENT_CHANGED, summary=summary)
    return preference
