"""Settings → Suppressions: the addresses campaign email never goes to (admins only)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns.filters import SuppressionFilterSet
from campaigns.forms import SuppressionAddForm
from campaigns.models import Suppression
from campaigns.services import suppressions as suppression_service
from candidates.services.export import export_csv_lines
from crm.middleware import iterate_in_scope
from crm.permissions import admin_required

PAGE_SIZE = 50


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


@admin_required
@require_http_methods(["GET", "POST"])
def suppression_list(request, org_slug):
    organization = request.organization
    form = SuppressionAddForm(request.POST or None, limit=suppression_service.ADD_LIMIT)
    if request.method == "POST" and form.is_valid():
        result = suppression_service.suppressions_add(
            organization=organization,
            emails=form.cleaned_data["addresses"],
            detail=form.cleaned_data["note"],
            actor=request.user,
        )
        parts = [f"{_plural(len(result.added), 'address', 'addresses')} suppressed"]
        if result.already:
            parts.append(f"{_plural(len(result.already), 'was', 'were')} on the list already")
        if result.stopped:
            parts.append(
                f"{_plural(result.stopped, 'campaign enrollment', 'campaign enrollments')} stopped"
            )
        messages.success(request, "; ".join(parts) + ".")
        return redirect("campaigns:suppression_list", org_slug=org_slug)
    filterset = SuppressionFilterSet(
        request.GET, queryset=Suppression.objects.filter(organization=organization)
    )
    rows = filterset.qs if filterset.is_valid() else Suppression.objects.none()
    page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = suppression_service.suppression_counts(organization=organization)
    return render(
        request,
        "campaigns/settings/suppressions.html",
        {
            "form": form,
            "filterset": filterset,
            "filtered": any(request.GET.get(n) for n in filterset.filters),
            "page_obj": page_obj,
            "counts": [
                (reason, label, counts[reason]) for reason, label in Suppression.Reason.choices
            ],
            "total": sum(counts.values()),
            "liftable": suppression_service.LIFTABLE,
            "add_limit": suppression_service.ADD_LIMIT,
        },
    )


@require_POST
@admin_required
def suppression_lift(request, org_slug, suppression_id):
    suppression = get_object_or_404(
        Suppression, organization=request.organization, pk=suppression_id
    )
    try:
        suppression_service.suppression_lift(suppression=suppression, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"{suppression.email} is no longer suppressed: new campaigns can reach it."
        )
    return redirect("campaigns:suppression_list", org_slug=org_slug)


@admin_required
@require_safe
def suppressions_export(request, org_slug):
    """The whole list as CSV (for an audit, or for the next email provider), streamed; cells a
    spreadsheet could run as formulas are neutralised."""
    organization = request.organization
    labels = dict(Suppression.Reason.choices)
    rows = (
        [
            email,
            labels.get(reason, reason),
            detail,
            timezone.localtime(at).strftime("%Y-%m-%d %H:%M"),
        ]
        for email, reason, detail, at in Suppression.objects.filter(organization=organization)
        .order_by("created_at", "pk")
        .values_list("email", "reason", "detail", "created_at")
        .iterator(chunk_size=2000)
    )
    lines = export_csv_lines(["email", "reason", "detail", "suppressed_at"], rows)
    response = StreamingHttpResponse(
        iterate_in_scope(organization, lines), content_type="text/csv; charset=utf-8"
    )
    name = f"{slugify(organization.name) or 'organisation'}-suppressions.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
