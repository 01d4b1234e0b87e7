from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from crm import services
from crm.forms import InvitationForm, MemberRemoveForm, MembershipRoleForm, OrganizationForm
from crm.handover import handovers_count
from crm.home import HOME_PANELS
from crm.models import Invitation, Membership, Organization, Role, WorkerHeartbeat
from crm.permissions import admin_required
from crm.selectors import memberships_for_user, organization_members


def home(request):
    """Anonymous visitors log in; members go to their organisation or choose one."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    memberships = memberships_for_user(user=request.user)
    if not memberships:
        return redirect("organization_create")
    if len(memberships) == 1:
        return redirect("dashboard", org_slug=memberships[0].organization.slug)
    return render(request, "crm/choose_organization.html", {"memberships": memberships})


@login_required
def organization_create(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = services.organization_create(
            user=request.user,
            # The creator's address is the default sender until the Email tab changes it.
            sender_email=request.user.email,
            **{field: form.cleaned_data[field] for field in form.Meta.fields},
        )
        messages.success(request, f"{organization.name} is ready. Welcome!")
        return redirect("dashboard", org_slug=organization.slug)
    return render(request, "crm/organization_form.html", {"form": form, "creating": True})


@require_safe
def dashboard(request, org_slug):
    return render(request, "crm/dashboard.html", {"home_panels": HOME_PANELS})


@admin_required
def organization_settings(request, org_slug):
    # A copy: validating writes the posted values onto the form's instance, and a slug taken by
    # another organisation would otherwise lead every link of the re-rendered page there.
    form = OrganizationForm(
        request.POST or None, instance=Organization.objects.get(pk=request.organization.pk)
    )
    if request.method == "POST" and form.is_valid():
        organization = services.organization_update(
            organization=request.organization, **form.cleaned_data
        )
        messages.success(request, "Settings saved.")
        return redirect("organization_settings", org_slug=organization.slug)
    return render(request, "crm/organization_form.html", {"form": form, "creating": False})


def _members_page(request, form):
    members = list(organization_members(organization=request.organization))
    admins = [member for member in members if member.role == Role.ADMIN]
    context = {
        "form": form,
        "members": members,
        # The last admin can be neither demoted nor removed, so their row offers neither.
        "sole_admin_id": admins[0].pk if len(admins) == 1 else None,
        "invitations": Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at"),
        "roles": Role.choices,
    }
    return render(request, "crm/members.html", context)


@require_safe
def members(request, org_slug):
    return _members_page(request, InvitationForm())


@require_POST
@admin_required
def member_invite(request, org_slug):
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                organization=request.organization, invited_by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error("email", error)
        else:
            _invitation_sent_message(request, invitation)
            return redirect("members", org_slug=org_slug)
    return _members_page(request, form)


def _invitation_sent_message(request, invitation) -> None:
    if invitation.email_error:
        messages.warning(
            request,
            f"The invitation for {invitation.email} is saved, but its email could not be sent "
            f"({invitation.email_error}). Check the email settings, then use Resend.",
        )
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")


@require_POST
@admin_required
def member_change_role(request, org_slug, membership_id):
    membership = get_object_or_404(Membership, pk=membership_id)
    form = MembershipRoleForm(request.POST)
    if form.is_valid():
        try:
            successor, handed = services.membership_change_role(
                membership=membership, role=form.cleaned_data["role"], changed_by=request.user
            )
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(
                request,
                f"{membership.user} is now {membership.get_role_display()}."
                + _took_over(successor, handed),
            )
    else:
        messages.error(request, "Choose a valid role.")
    return redirect("members", org_slug=org_slug)


def _took_over(successor, handed: list[tuple[str, int]]) -> str:
    """' Alex Morgan took over: 156 candidates they own and 3 open follow-ups.' (or "")."""
    moved = [f"{count:,} {label}" for label, count in handed if count]
    if successor is None or not moved:
        return ""
    listed = moved[0] if len(moved) == 1 else f"{', '.join(moved[:-1])} and {moved[-1]}"
    return f" {successor.display_name} took over: {listed}."


@admin_required
def member_remove(request, org_slug, membership_id):
    """A page saying what the member is in charge of here and who takes it over; the POST
    removes them and hands it over (to the admin doing it when no one is chosen)."""
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    leaving = membership.user
    form = MemberRemoveForm(
        request.POST if request.method == "POST" else None,
        organization=request.organization,
        leaving=leaving,
        initial={"successor": request.user.pk if request.user != leaving else None},
    )
    if request.method == "POST" and form.is_valid():
        successor = form.cleaned_data["successor"] or request.user
        try:
            handed = services.membership_remove(membership=membership, successor=successor)
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(
                request,
                f"{leaving} was removed from {request.organization}."
                + _took_over(successor, handed),
            )
        return redirect("members", org_slug=org_slug)
    context = {
        "form": form,
        "leaving": membership,
        "in_charge": [
            (label, count)
            for label, count in handovers_count(
                organization_id=request.organization.pk, user_id=leaving.pk
            )
            if count
        ],
    }
    return render(request, "crm/member_remove.html", context)


@require_POST
@admin_required
def invitation_revoke(request, org_slug, invitation_id):
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    if services.invitation_revoke(invitation=invitation):
        messages.success(request, f"The invitation for {invitation.email} was revoked.")
    else:
        messages.info(
            request, f"The invitation for {invitation.email} had already been {invitation.state}."
        )
    return redirect("members", org_slug=org_slug)


@require_POST
@admin_required
def invitation_resend(request, org_slug, invitation_id):
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    try:
        invitation = services.invitation_resend(invitation=invitation, sender=request.user)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        _invitation_sent_message(request, invitation)
    return redirect("members", org_slug=org_slug)


@never_cache
def invitation_accept(request, token):
    """The link from an invitation email. GET shows it; POST (logged in) accepts it."""
    invitation = services.invitation_for_token(token=token)
    if invitation is None:
        return render(request, "crm/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        request.session["pending_invitation"] = token
        return render(request, "crm/invitation_accept.html", {"invitation": invitation})
    if request.method == "POST" and invitation.is_pending:
        try:
            membership = services.invitation_accept(invitation=invitation, user=request.user)
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            request.session.pop("pending_invitation", None)
            messages.success(request, f"Welcome to {membership.organization.name}!")
            return redirect("dashboard", org_slug=membership.organization.slug)
    return render(request, "crm/invitation_accept.html", {"invitation": invitation})


@require_GET
@never_cache
def healthz(request):
    """Liveness and readiness for load balancers and operators: database, Redis, a worker."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {error.__class__.__name__}"
    try:
        cache.set("healthz", "ok", 10)
        checks["redis"] = "ok" if cache.get("healthz") == "ok" else "error: read-back failed"
    except Exception as error:
        checks["redis"] = f"error: {error.__class__.__name__}"
    try:
        latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
        age = (timezone.now() - latest.seen_at).total_seconds() if latest else None
        if age is not None and age <= settings.WORKER_HEARTBEAT_MAX_AGE:
            checks["worker"] = "ok"
        else:
            checks["worker"] = "stale" if latest else "no heartbeat yet"
        checks["worker_heartbeat_age_seconds"] = round(age, 1) if age is not None else None
    except Exception as error:
        checks["worker"] = f"error: {error.__class__.__name__}"
    serving = checks["database"] == "ok" and checks["redis"] == "ok"
    status = "ok" if serving and checks["worker"] == "ok" else ("degraded" if serving else "down")
    # 503 only when this web process cannot serve; a stale worker is reported, not fatal.
    return JsonResponse({"status": status, **checks}, status=200 if serving else 503)
