"""Role checks for views under /o/<org_slug>/ (the middleware has already checked membership)."""

from functools import wraps

from django.core.exceptions import PermissionDenied

from crm.models import Role


def role_required(minimum: str):
    """403 unless the member's role is at least `minimum` (viewer < recruiter < admin)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None or not membership.has_role(minimum):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        wrapper.required_role = minimum
        return wrapper

    return decorator


recruiter_required = role_required(Role.RECRUITER)
admin_required = role_required(Role.ADMIN)
