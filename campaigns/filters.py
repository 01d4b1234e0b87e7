"""django-filter filter sets of the campaigns app."""

import django_filters

from campaigns.models import Suppression


class SuppressionFilterSet(django_filters.FilterSet):
    """Settings → Suppressions: part of an address, and the reason. Newest first."""

    email = django_filters.CharFilter(lookup_expr="icontains", label="Address", max_length=254)
    reason = django_filters.ChoiceFilter(
        choices=Suppression.Reason.choices, empty_label="Any reason"
    )

    class Meta:
        model = Suppression
        fields = ["email", "reason"]

    @property
    def qs(self):
        return super().qs.order_by("-created_at", "-pk")
