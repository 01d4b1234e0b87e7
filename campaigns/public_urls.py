"""Candidate-facing URLs, mounted at /e/ (outside /o/<org_slug>/: candidates never log in).
Each is addressed by a signed token that names the organisation and the candidate."""

from django.urls import path

from campaigns.views import branding, consent, public

app_name = "campaigns_public"

urlpatterns = [
    path("u/<str:token>/", public.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/resubscribe/", public.resubscribe, name="resubscribe"),
    path("p/<str:token>/", public.preferences, name="preferences"),
    path("o/<str:token>.gif", public.open_pixel, name="open"),
    path("c/<str:token>/", public.click, name="click"),
    path("k/<str:token>/", consent.consent_confirm, name="consent_confirm"),
    path("b/<int:organization_id>/<str:key>.png", branding.logo, name="logo"),
]
