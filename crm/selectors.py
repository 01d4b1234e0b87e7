"""Reads on tenancy that several views share."""

from django.db.models import QuerySet
from django.http import Http404
from django_scopes import scopes_disabled

from crm.models import Membership, Organization, User


def memberships_for_user(*, user: User) -> list[Membership]:
    """The user's organisations, for the organisation switcher."""
    if not user.is_authenticated:
        return []
    with scopes_disabled():
        return list(
            Membership.objects.filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )


def membership_for(*, user: User, slug: str) -> Membership:
    """The user's membership of the organisation `slug`; 404 whether it is missing or foreign."""
    with scopes_disabled():
        membership = (
            Membership.objects.filter(user=user, organization__slug=slug)
            .select_related("organization")
            .first()
        )
    if membership is None:
        raise Http404("No such organisation.")
    return membership


def organization_members(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__name", "user__email")
    )
