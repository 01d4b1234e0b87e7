from crm.navigation import nav_section
from crm.selectors import memberships_for_user


def organization(request):
    """The current organisation, the membership, and the user's organisations (the switcher)."""
    user = getattr(request, "user", None)
    # Under /o/<slug>/ the middleware has read them already.
    my_memberships = getattr(request, "my_memberships", None)
    if my_memberships is None:
        my_memberships = memberships_for_user(user=user) if user is not None else []
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        "my_memberships": my_memberships,
        "nav_section": nav_section(getattr(request, "resolver_match", None)),
    }
