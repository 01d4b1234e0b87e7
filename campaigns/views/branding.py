"""The organisation's logo, public (every campaign email shows it): /e/b/<id>/<key>.png."""

from django.http import FileResponse, Http404
from django.views.decorators.http import require_safe
from django_scopes import scopes_disabled

from campaigns.services.branding import logo_key
from crm.models import Organization

YEAR = 365 * 24 * 3600


@require_safe
def logo(request, organization_id: int, key: str):
    """The logo file, cacheable for a year: a new upload gets a new key (so a new URL). Any
    other key — an old logo, a guess — is a 404 and reveals nothing."""
    with scopes_disabled():
        organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or not organization.logo or logo_key(organization) != key:
        raise Http404("No such logo.")
    try:
        handle = organization.logo.open("rb")
    except FileNotFoundError as error:
        raise Http404("No such logo.") from error
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response
