"""Consent to campaign email, and double opt-in.

`consent_request_double_opt_in` records the request (time, source, the exact wording) and sends
one transactional email with a signed confirmation link; the candidate confirms with a POST on
that page (a GET only shows the button: mail scanners follow links). Until they confirm,
nothing but that confirmation email goes to them (see services/guards.consent_skips).
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.services import engagement_event_record
from campaigns.conf import site_url
from campaigns.models import CandidateEmailPreference, Consent, Suppression, Topic
from campaigns.services import tokens
from candidates.models import Activity, Candidate
from candidates.services.activities import activity_record
from crm.emails import send_transactional_email
from crm.models import Organization

CONSENT_SALT = "campaigns.consent-confirm"


def consent_token(*, consent: Consent) -> str:
    return tokens.token_make(
        salt=CONSENT_SALT,
        organization_id=consent.organization_id,
        candidate_id=consent.candidate_id,
        message_id=consent.pk,  # the third id slot names the consent request
    )


def consent_from_token(token: str) -> tuple[Organization, Candidate, Consent] | None:
    """(organisation, candidate, consent request) named by a confirmation token, or None for a
    forged, expired or foreign token. The candidate is the consent's now, not the one the token
    names: the signed token makes the request's id authentic, and a merge since it was sent
    moved the request from the merged-away profile to the surviving one."""
    content = tokens.token_read(token, salt=CONSENT_SALT)
    if content is None or not content.message_id:
        return None
    with scopes_disabled():
        consent = (
            Consent.objects.select_related("organization", "candidate")
            .filter(organization_id=content.organization_id, pk=content.message_id)
            .first()
        )
    if consent is None:
        return None
    return consent.organization, consent.candidate, consent


def consent_refusal_reason(
    *, candidate: Candidate, unsubscribed: bool, suppression: Suppression | None = None
) -> str:
    """Why `candidate` may not be sent a double opt-in request, from what is known of them
    (whether they unsubscribed, their address's suppression if any), or "" when they may.
    The profile asks it with what its card has already read; `consent_request_refusal`
    reads everything."""
    if candidate.status == Candidate.Status.DO_NOT_CONTACT:
        return "This candidate is marked “Do not contact”: no confirmation email is sent."
    if unsubscribed:
        return (
            "This candidate unsubscribed: no confirmation email is sent. They can resubscribe"
            " from the link in any email they had from you."
        )
    if suppression is not None:
        return (
            f"{candidate.email} is suppressed ({suppression.get_reason_display().lower()}):"
            " no confirmation email is sent."
        )
    return ""


def consent_request_refusal(*, candidate: Candidate) -> str:
    """Why `candidate` may not be sent a double opt-in request, or "" when they may."""
    unsubscribed = CandidateEmailPreference.objects.filter(
        organization_id=candidate.organization_id,
        candidate=candidate,
        unsubscribed_at__isnull=False,
    ).exists()
    suppression = Suppression.objects.filter(
        organization_id=candidate.organization_id, email=candidate.email.lower()
    ).first()
    return consent_refusal_reason(
        candidate=candidate, unsubscribed=unsubscribed, suppression=suppression
    )


# How long an unanswered request stops another from being sent: a recruiter's (a double click,
# or a colleague asking again the same day) and a candidate's own (a sign-up form sent twice;
# also what keeps someone from flooding a stranger's inbox with confirmations).
RECRUITER_RESEND_AFTER = timedelta(hours=24)
CANDIDATE_RESEND_AFTER = timedelta(minutes=10)


def _consents(*, candidate: Candidate, topic):
    """The candidate's consents to campaign email on `topic` that were not withdrawn."""
    return Consent.objects.filter(
        organization_id=candidate.organization_id,
        candidate=candidate,
        purpose=Consent.Purpose.CAMPAIGN_EMAIL,
        topic=topic,
        withdrawn_at__isnull=True,
    )


def _pending_request(*, candidate: Candidate, topic, on_candidates_request: bool) -> Consent | None:
    """The unanswered request for the same consent sent within the resend interval, if any.
    Reads under a lock on the candidate, so two requests at once send one email."""
    Candidate.objects.select_for_update().filter(pk=candidate.pk).first()
    since = timezone.now() - (
        CANDIDATE_RESEND_AFTER if on_candidates_request else RECRUITER_RESEND_AFTER
    )
    return (
        _consents(candidate=candidate, topic=topic)
        .filter(granted_at__isnull=True, requested_at__gte=since)
        .order_by("-requested_at")
        .first()
    )


@transaction.atomic
def consent_request_double_opt_in(
    *,
    candidate: Candidate,
    source: str,
    wording: str,
    topic: Topic | None = None,
    on_candidates_request: bool = False,
    actor=None,
) -> Consent:
    """Record a consent request and email the confirmation link (transactional: no list
    headers, not blocked by campaign suppressions). A candidate who already consented gets no
    email; the active consent is returned.

    A recruiter's request is refused for anyone who asked not to hear from the organisation:
    a candidate marked "do not contact", an unsubscribed one (they can resubscribe from any
    email's link themselves) or a suppressed address. A request the candidate made themselves
    (`on_candidates_request`: a sign-up form) gets its confirmation whatever came before —
    confirming it is how they opt in again."""
    if not candidate.email:
        raise ValidationError("This candidate has no email address.")
    if not on_candidates_request and (reason := consent_request_refusal(candidate=candidate)):
        raise ValidationError(reason)
    if not wording.strip():
        raise ValidationError({"wording": "Say what the candidate agrees to."})
    existing = _consents(candidate=candidate, topic=topic).filter(granted_at__isnull=False).first()
    if existing is not None:
        return existing
    pending = _pending_request(
        candidate=candidate, topic=topic, on_candidates_request=on_candidates_request
    )
    if pending is not None:
        if on_candidates_request:
            return pending  # a form sent twice: one confirmation email is enough
        raise ValidationError(
            f"A confirmation email went to {candidate.email} "
            f"{timezone.localtime(pending.requested_at):%-d %b at %H:%M} and is still waiting "
            f"for them: you can ask again {RECRUITER_RESEND_AFTER.days * 24} hours after it."
        )
    consent = Consent.objects.create(
        organization_id=candidate.organization_id,
        candidate=candidate,
        purpose=Consent.Purpose.CAMPAIGN_EMAIL,
        topic=topic,
        source=source[:200],
        wording=wording.strip(),
        requested_at=timezone.now(),
    )
    organization = Organization.objects.get(pk=candidate.organization_id)
    url = site_url() + reverse(
        "campaigns_public:consent_confirm", args=[consent_token(consent=consent)]
    )
    context = {
        "organization": organization.name,
        "first_name": candidate.first_name,
        "wording": consent.wording,
        "url": url,
    }
    to = [candidate.email]
    transaction.on_commit(
        lambda: send_transactional_email(
            template="campaigns/email/consent_confirm", to=to, context=context
        )
    )
    activity_record(
        candidate=candidate,
        kind=Activity.Kind.CONSENT_CHANGED,
        summary=f"Asked to confirm consent to campaign email ({consent.source})",
        data={"consent_id": consent.pk},
        actor=actor,
    )
    return consent


@transaction.atomic
def consent_confirm(*, consent: Consent) -> bool:
    """The candidate confirmed (POST on the signed page). False when nothing changed."""
    consent = Consent.objects.select_for_update().get(pk=consent.pk)
    if consent.granted_at is not None or consent.withdrawn_at is not None:
        return False
    consent.granted_at = timezone.now()
    consent.save(update_fields=["granted_at"])
    engagement_event_record(
        organization_id=consent.organization_id,
        kind="consent_given",
        candidate_id=consent.candidate_id,
        data={"consent_id": consent.pk, "source": consent.source},
    )
    activity_record(
        candidate=consent.candidate,
        kind=Activity.Kind.CONSENT_CHANGED,
        summary=f"Confirmed consent to campaign email (double opt-in, {consent.source})",
        data={"consent_id": consent.pk, "wording": consent.wording[:1000]},
    )
    return True


def consent_withdraw(*, consent: Consent) -> bool:
    changed = Consent.objects.filter(pk=consent.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now()
    )
    if changed:
        activity_record(
            candidate=consent.candidate,
            kind=Activity.Kind.CONSENT_CHANGED,
            summary="Withdrew consent to campaign email",
            data={"consent_id": consent.pk},
        )
    return bool(changed)
