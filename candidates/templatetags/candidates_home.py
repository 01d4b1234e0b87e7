from datetime import timedelta

from django import template
from django.utils import timezone

register = template.Library()


@register.simple_tag(takes_context=True)
def candidates_home_summary(context):
    """The home page's candidate figures and the newest profiles (four indexed queries)."""
    from candidates.models import Candidate

    organization = context["organization"]
    live = Candidate.objects.live().filter(organization=organization)
    since = timezone.now() - timedelta(days=30)
    return {
        "total": live.count(),
        "recent": live.filter(created_at__gte=since).count(),
        "mine": live.filter(owner=context["request"].user).count(),
        "newest": list(live.select_related("owner").order_by("-created_at", "-id")[:5]),
    }
