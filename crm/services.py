"""Writes on tenancy: organisations, memberships, invitations."""

import hashlib
import logging
import secrets
import smtplib
import time
from datetime import timedelta

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.counters import counter_give_back, counter_take
from crm.emails import send_transactional_email
from crm.handover import handovers_apply
from crm.models import Invitation, Membership, Organization, Role, User
from crm.storage import stored_files_delete_on_commit

logger = logging.getLogger(__name__)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def organization_create(*, user: User, name: str, slug: str, **details) -> Organization:
    """Create an organisation; its creator becomes its first admin."""
    organization = Organization.objects.create(name=name, slug=slug, **details)
    with scopes_disabled():
        Membership.objects.create(organization=organization, user=user, role=Role.ADMIN)
    organization_setup_defaults(organization=organization)
    return organization


@transaction.atomic
def organization_update(
    *, organization: Organization, name: str, slug: str, time_zone: str
) -> Organization:
    """Save the organisation's settings. A new time zone also moves, in the background, the
    pending steps of its sequences that wait for a sending window in the organisation's zone
    (campaigns.services.sequences.organization_time_zone_changed)."""
    previous_zone = (
        Organization.objects.select_for_update()
        .values_list("time_zone", flat=True)
        .get(pk=organization.pk)
    )
    organization.name, organization.slug, organization.time_zone = name, slug, time_zone
    organization.save(update_fields=["name", "slug", "time_zone"])
    if time_zone != previous_zone:
        from campaigns.services.sequences import organization_time_zone_changed

        organization_time_zone_changed(organization_id=organization.pk)
    return organization


def organization_setup_defaults(*, organization: Organization) -> None:
    """Give a new organisation what every organisation starts with.

    Apps that need per-organisation defaults (stages, topics…) extend this function. Email
    topics and role families are also created on first use, for organisations made before they
    existed; creating them here keeps that first use (which can be a page view) from writing.
    """
    from campaigns.services.role_families import role_families_ensure_defaults
    from campaigns.services.topics import topics_ensure_defaults
    from pipelines.services import stages_create_defaults

    stages_create_defaults(organization=organization)
    with scopes_disabled():
        topics_ensure_defaults(organization=organization)
        role_families_ensure_defaults(organization=organization)


def _admin_count(organization: Organization) -> int:
    with scopes_disabled():
        return Membership.objects.filter(organization=organization, role=Role.ADMIN).count()


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, changed_by: User | None = None
) -> tuple[User | None, list[tuple[str, int]]]:
    """Change a member's role. The organisation always keeps at least one admin. A recruiter or
    admin who becomes a viewer can no longer own candidates, pools or follow-ups, nor send
    campaigns: what they were in charge of goes to `changed_by` (or, when they change their
    own role, to another admin), as on removal (crm/handover.py). Returns who took over and
    (label, rows) handed over."""
    with scopes_disabled():
        # Lock the organisation's admin rows so two concurrent demotions cannot both pass.
        admins = list(
            Membership.objects.select_for_update()
            .filter(organization_id=membership.organization_id, role=Role.ADMIN)
            .order_by("pk")
            .values_list("user_id", flat=True)
        )
    demoting = membership.role == Role.ADMIN and role != Role.ADMIN
    if demoting and _admin_count(membership.organization) <= 1:
        raise ValidationError("The last admin cannot be demoted; make someone else admin first.")
    handed: list[tuple[str, int]] = []
    successor = None
    if role == Role.VIEWER and membership.role != Role.VIEWER:
        successor_id = changed_by.pk if changed_by is not None else None
        if successor_id in (None, membership.user_id):
            successor_id = next((pk for pk in admins if pk != membership.user_id), None)
        if successor_id is not None:
            successor = changed_by if changed_by and changed_by.pk == successor_id else None
            successor = successor or User.objects.get(pk=successor_id)
            handed = handovers_apply(
                organization_id=membership.organization_id,
                user_id=membership.user_id,
                successor_id=successor_id,
            )
    membership.role = role
    membership.save(update_fields=["role"])
    return successor, handed


@transaction.atomic
def membership_remove(
    *, membership: Membership, successor: User | None = None
) -> list[tuple[str, int]]:
    """Take someone out of the organisation. With a `successor` (a recruiter or admin of it),
    what they were in charge of there becomes the successor's (crm/handover.py); returns
    (label, rows) handed over."""
    with scopes_disabled():
        list(
            Membership.objects.select_for_update()
            .filter(organization_id=membership.organization_id, role=Role.ADMIN)
            .values_list("pk", flat=True)
        )
    if membership.role == Role.ADMIN and _admin_count(membership.organization) <= 1:
        raise ValidationError("The last admin cannot be removed; make someone else admin first.")
    handed: list[tuple[str, int]] = []
    if successor is not None:
        if successor.pk == membership.user_id:
            raise ValidationError("Choose someone other than the person who leaves.")
        with scopes_disabled():
            writer = Membership.objects.filter(
                organization_id=membership.organization_id,
                user=successor,
                role__in=[Role.ADMIN, Role.RECRUITER],
            ).exists()
        if not writer:
            raise ValidationError(
                f"{successor.display_name} is not a recruiter or admin of this organisation."
            )
        handed = handovers_apply(
            organization_id=membership.organization_id,
            user_id=membership.user_id,
            successor_id=successor.pk,
        )
    membership.delete()
    return handed


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User
) -> Invitation:
    """Invite someone by email. The link in the email is single-use and expires. When the
    email cannot be sent the invitation is kept with the reason (`email_error`): see
    `invitation_resend`."""
    email = email.strip()
    with scopes_disabled():
        if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
            raise ValidationError(f"{email} is already a member of {organization.name}.")
    _invitation_allowance_take(organization=organization, sender=invited_by)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Invitation.objects.filter(
            organization=organization,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=timezone.now())
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=_hash_token(token),
            invited_by=invited_by,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        transaction.on_commit(lambda: _invitation_send(invitation, token, sender=invited_by))
    return invitation


def invitation_resend(*, invitation: Invitation, sender: User) -> Invitation:
    """A new link for an invitation neither accepted nor revoked — its email failed, was lost,
    or the week ran out. The old link stops working and the week starts again."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic(), scopes_disabled():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .get(pk=invitation.pk)
        )
        if invitation.accepted_at or invitation.revoked_at:
            raise ValidationError(
                f"The invitation for {invitation.email} has been {invitation.state}."
            )
        _invitation_allowance_take(organization=invitation.organization, sender=sender)
        invitation.token_hash = _hash_token(token)
        invitation.expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
        invitation.save(update_fields=["token_hash", "expires_at"])
        transaction.on_commit(lambda: _invitation_send(invitation, token, sender=sender))
    return invitation


def _invitation_allowance_take(*, organization: Organization, sender: User) -> None:
    """One invitation email from this hour's allowance of the organisation and of the sender
    (settings.INVITATIONS_PER_HOUR each), or a ValidationError saying when to try again."""
    cap = settings.INVITATIONS_PER_HOUR
    hour = int(time.time() // 3600)
    per_organization = f"crm:invitations:org:{organization.pk}:{hour}"
    granted = counter_take(key=per_organization, wanted=1, cap=cap, timeout=3700)
    if granted and not counter_take(
        key=f"crm:invitations:user:{sender.pk}:{hour}", wanted=1, cap=cap, timeout=3700
    ):
        counter_give_back(key=per_organization, count=1)
        granted = 0
    if not granted:
        minutes = 60 - int(time.time() % 3600 // 60)
        raise ValidationError(
            f"No more than {cap} invitations can be sent in an hour; try again in "
            f"{minutes} minute{'s' if minutes != 1 else ''}."
        )


# What a mail server or an ESP that is down or refuses raises through Django's email API.
MAIL_ERRORS = (smtplib.SMTPException, OSError, AnymailError)


def _invitation_send(invitation: Invitation, token: str, *, sender: User) -> None:
    """Email the invitation's link, after the commit that stored its hash. A mail server that
    is down or refuses leaves the invitation pending with the reason recorded, and the
    admin's page says so instead of failing."""
    try:
        send_transactional_email(
            template="crm/email/invitation",
            to=[invitation.email],
            context={
                "organization": invitation.organization.name,
                "inviter": sender.display_name,
                "role": Role(invitation.role).label,
                "url": settings.SITE_URL + reverse("invitation_accept", kwargs={"token": token}),
                "days": settings.INVITATION_TTL_DAYS,
            },
        )
    except MAIL_ERRORS as error:
        logger.warning(
            "crm.invitations: the email for invitation %s could not be sent: %r",
            invitation.pk,
            error,
        )
        fields = {"emailed_at": None, "email_error": f"{error}"[:300] or type(error).__name__}
    else:
        fields = {"emailed_at": timezone.now(), "email_error": ""}
    with scopes_disabled():
        Invitation.objects.filter(pk=invitation.pk).update(**fields)
    for name, value in fields.items():
        setattr(invitation, name, value)


def invitation_for_token(*, token: str) -> Invitation | None:
    with scopes_disabled():
        return (
            Invitation.objects.select_related("organization", "invited_by")
            .filter(token_hash=_hash_token(token))
            .first()
        )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Accept an invitation as `user`. Works once; afterwards the link is dead."""
    with scopes_disabled():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_pending:
            raise ValidationError(f"This invitation has {invitation.state}.")
        if user.email.lower() != invitation.email.lower():
            raise ValidationError(
                f"This invitation was sent to {invitation.email}; log in with that address."
            )
        membership, _ = Membership.objects.get_or_create(
            organization=invitation.organization,
            user=user,
            defaults={"role": invitation.role},
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, invitation: Invitation) -> bool:
    """Kill the invitation's link; False when it was already accepted or revoked."""
    revoked = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    return bool(revoked)


@transaction.atomic
def organization_delete(*, organization: Organization) -> dict[str, int]:
    """Delete a tenant and everything it owns, for an operator (the admin and
    `manage.py delete_organization`). Stored files (résumés, import and export files, the
    logo) are removed after the commit. Returns rows deleted per model label.

    History rows guard their stages with RESTRICT, not PROTECT: inside a living organisation a
    stage that cards went through cannot be deleted, but here every row that names it goes in
    the same cascade, which RESTRICT allows."""
    from candidates.models import Attachment, Job

    with scopes_disabled():
        files = list(
            Attachment.objects.filter(organization=organization).values_list("file", flat=True)
        )
        for input_file, output_file in Job.objects.filter(organization=organization).values_list(
            "input_file", "output_file"
        ):
            files += [input_file, output_file]
        files.append(organization.logo.name if organization.logo else "")
        _, deleted = organization.delete()
    stored_files_delete_on_commit(files)
    return deleted
