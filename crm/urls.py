from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from crm import views

# Staff sign in to Django's admin through allauth's login, as everyone else does: its own form
# would skip the second factor (MFA) and allauth's rate limits on failed logins.
admin.site.login = secure_admin_login(admin.site.login)

organization_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("candidates/", include("candidates.urls")),
    path("pools/", include("pipelines.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("settings/", views.organization_settings, name="organization_settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/invite/", views.member_invite, name="member_invite"),
    path(
        "settings/members/<int:membership_id>/role/",
        views.member_change_role,
        name="member_change_role",
    ),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "settings/invitations/<int:invitation_id>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("organizations/new/", views.organization_create, name="organization_create"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("o/<slug:org_slug>/", include(organization_patterns)),
    # Candidate-facing pages (unsubscribe, preferences, tracking): signed tokens, no login.
    path("e/", include("campaigns.public_urls")),
    # ESP tracking and inbound webhooks (every ESP anymail supports), checked by anymail:
    # basic auth from ANYMAIL_WEBHOOK_SECRET and the ESP's signature where it has one; a body
    # that cannot be read gets 400 (campaigns/webhook_urls.py).
    path("webhooks/anymail/", include("campaigns.webhook_urls")),
    path("admin/", admin.site.urls),
]
