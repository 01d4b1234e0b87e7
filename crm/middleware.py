"""Resolve the organisation from the URL, check membership, activate its scope and its time
zone."""

from django.contrib.auth.views import redirect_to_login
from django.urls import Resolver404, resolve
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from crm.selectors import membership_in, memberships_for_user


class OrganizationMiddleware:
    """For every URL under ``/o/<org_slug>/``:

    * anonymous visitors are sent to the login page;
    * a logged-in user who is not a member gets the same 404 as for an organisation that does
      not exist (no hint that it does);
    * members get ``request.organization`` and ``request.membership``, and the rest of the
      request runs inside ``scope(organization=...)`` so any unscoped query on tenant data raises,
      with the organisation's time zone active: times on its pages are its wall clock, and
      ``timezone.localdate()`` (a form's "in the future", "today" on the follow-ups) is its date.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)

        slug = match.kwargs.get("org_slug")
        if slug is None:
            if match.app_name == "admin" and request.user.is_staff:
                # Operators in Django's admin see every organisation, explicitly.
                with scopes_disabled():
                    return self.get_response(request)
            return self.get_response(request)

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        # One query for the membership and the navbar's organisation switcher.
        request.my_memberships = memberships_for_user(user=request.user)
        membership = membership_in(request.my_memberships, slug=slug)  # raises Http404
        request.membership = membership
        request.organization = membership.organization
        organization = membership.organization
        with scope(organization=organization), timezone.override(organization.zone):
            return self.get_response(request)


def iterate_in_scope(organization, iterable):
    """Iterate inside the organisation's scope: a streamed response's body is read after the
    view (and the middleware's scope) has returned."""
    with scope(organization=organization):
        yield from iterable
