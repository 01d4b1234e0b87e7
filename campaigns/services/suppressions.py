"""Settings → Suppressions: the organisation's list of addresses that campaign email never goes
to, as its admins see and change it.

Rows arrive from three places: the ESP's bounces and spam complaints (services.webhooks),
candidates' unsubscribes (services.preferences, services.tracking) and admins, who add
addresses by hand here. What an admin may lift depends on who put the row there:

- added by hand: the admin's own decision, so theirs to undo;
- a hard bounce: the mailbox did not exist when we wrote; an admin who knows it works again
  (the candidate said so) may lift it. The candidate's stopped enrollments stay stopped;
- an unsubscribe: the candidate's choice, undone only by the candidate, from the preference
  centre link in any email they had (services.preferences.candidate_resubscribe);
- a spam complaint: never lifted in the app. Mailbox providers treat a complaint as a
  permanent opt-out and the ESP keeps its own block; an operator can remove the row in the
  Django admin if the candidate asks in writing (docs/campaigns.md, "Suppressions").
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count

from campaigns.models import Enrollment, Suppression
from campaigns.services.sequences import enrollments_stop_for_candidates
from candidates.models import Activity, Candidate
from candidates.services.activities import activities_record_bulk
from crm.models import Organization, User

# How many addresses one submission of the "Suppress addresses" form may hold: a pasted list
# from another tool, not a migration (an operator imports those in bulk).
ADD_LIMIT = 1000

LIFTABLE = frozenset({Suppression.Reason.MANUAL, Suppression.Reason.BOUNCED})

_NOT_LIFTABLE = {
    Suppression.Reason.UNSUBSCRIBED: (
        "Only the candidate can undo an unsubscribe, from the preference centre link in any "
        "email they had from you."
    ),
    Suppression.Reason.COMPLAINED: (
        "A spam complaint is not lifted here: mailbox providers treat it as a permanent "
        "opt-out and your email provider keeps its own block. If the candidate asks in writing "
        "to hear from you again, an operator can remove it."
    ),
}


@dataclass(frozen=True)
class AddResult:
    added: list[str]  # newly suppressed, in the order given
    already: list[str]  # were suppressed before (any reason); left as they were
    stopped: int  # enrollments ended because their candidate's address is now suppressed


def lift_refusal(suppression: Suppression) -> str:
    """Why an admin may not lift `suppression`, or "" when they may."""
    return _NOT_LIFTABLE.get(suppression.reason, "")


def suppression_counts(*, organization: Organization) -> dict[str, int]:
    """How many suppressed addresses the organisation has, by reason (every reason present,
    zero included), in one query."""
    counts = dict.fromkeys(Suppression.Reason.values, 0)
    rows = (
        Suppression.objects.filter(organization=organization)
        .values_list("reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def _actor_name(actor: User | None) -> str:
    if actor is None:
        return "an admin"
    return actor.get_full_name() or actor.email


@transaction.atomic
def suppressions_add(
    *, organization: Organization, emails: list[str], detail: str = "", actor: User | None = None
) -> AddResult:
    """Suppress `emails` (already validated and lower-cased, duplicates removed) for
    `organization`, reason "added by a recruiter". An address already on the list keeps its
    row and reason (an unsubscribe stays an unsubscribe). Candidates whose address is newly
    suppressed leave their campaigns (stop reason "suppressed", one timeline entry each for the
    stop and one for the suppression); their emails waiting in the outbox are skipped.

    One INSERT … ON CONFLICT DO NOTHING RETURNING: two admins adding the same address at the
    same moment write one row, and each is told exactly what it added."""
    if not emails:
        return AddResult(added=[], already=[], stopped=0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_suppression (organization_id, email, reason, detail, created_at)
            SELECT %s, address, %s, %s, now() FROM unnest(%s::text[]) AS address
            ON CONFLICT (organization_id, email) DO NOTHING
            RETURNING email
            """,
            [organization.pk, Suppression.Reason.MANUAL, detail[:500], list(emails)],
        )
        inserted = {row[0] for row in cursor.fetchall()}
    added = [email for email in emails if email in inserted]
    already = [email for email in emails if email not in inserted]
    stopped = 0
    if added:
        candidate_ids = list(
            Candidate.objects.live()
            .filter(organization=organization, email__in=added)
            .values_list("pk", flat=True)
        )
        if candidate_ids:
            summary = f"Email address suppressed by {_actor_name(actor)}"
            activities_record_bulk(
                organization_id=organization.pk,
                candidate_ids=candidate_ids,
                kind=Activity.Kind.CONSENT_CHANGED,
                summary=f"{summary}: {detail}" if detail else summary,
                actor=actor,
                data={"suppression": Suppression.Reason.MANUAL},
            )
            stopped = enrollments_stop_for_candidates(
                organization_id=organization.pk,
                candidate_ids=candidate_ids,
                reason=Enrollment.StopReason.SUPPRESSED,
                actor=actor,
            )
    return AddResult(added=added, already=already, stopped=stopped)


@transaction.atomic
def suppression_lift(*, suppression: Suppression, actor: User | None = None) -> None:
    """Take `suppression` off the list (see the module's docstring for which may be lifted);
    raises ValidationError for one that may not. The candidates with that address get a
    timeline entry; campaigns they had left stay left (nobody goes through one twice), new
    campaigns may reach them again."""
    refusal = lift_refusal(suppression)
    if refusal:
        raise ValidationError(refusal)
    reason = suppression.get_reason_display().lower()
    deleted, _ = Suppression.objects.filter(
        pk=suppression.pk, reason__in=list(LIFTABLE)
    ).delete()  # a complaint that arrived meanwhile replaced the row's reason: left alone
    if not deleted:
        raise ValidationError(
            "This address's suppression changed meanwhile; reload the list and look again."
        )
    candidate_ids = list(
        Candidate.objects.live()
        .filter(organization_id=suppression.organization_id, email=suppression.email)
        .values_list("pk", flat=True)
    )
    activities_record_bulk(
        organization_id=suppression.organization_id,
        candidate_ids=candidate_ids,
        kind=Activity.Kind.CONSENT_CHANGED,
        summary=f"Suppression lifted by {_actor_name(actor)} (was: {reason})",
        actor=actor,
        data={"suppression_lifted": suppression.reason},
    )
