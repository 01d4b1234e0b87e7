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


def membership_in(memberships: list[Membership], *, slug: str) -> Membership:
    """The membership of the organisation `slug` among the user's `memberships_for_user`
    (the switcher's list, read once per request); 404 whether it is missing or foreign."""
    for membership in memberships:
        if membership.organization.slug == slug:
            return membership
    raise Http404("No such organisation.")


def organization_members(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__name", "user__email")
    )
