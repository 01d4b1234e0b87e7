"""The candidate list's filters. Built per request with the organisation: owner choices are its
members, custom field filters come from its CustomField rows (never evaluated at import time).

Every filter travels in the query string, so a filtered list is a URL to bookmark or share,
and a saved search is that query string stored.
"""

import datetime
import re

import django_filters
from django import forms
from django.db.models import Case, Exists, FloatField, OuterRef, QuerySet, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Regex
from django.utils import timezone

from candidates.models import Activity, Candidate, CustomField
from candidates.normalize import normalize_tags
from candidates.search import SORT_CHOICES
from candidates.selectors import candidate_owner_choices
from candidates.services.custom_fields import custom_fields_active

UNASSIGNED = "unassigned"
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
# Parameters of the list page that are not filters: the cursor of keyset pagination.
PAGING_PARAMS = ("after", "before")
# `editing=<saved search id>`: the list is editing that saved search's filters (a banner offers
# to save them back); kept in the list's links, never part of a saved query.
EDITING_PARAM = "editing"
# `selected=<id>` (repeated) and `select_all=1`: the bulk selection of a bulk form sent back
# with an error, ticked again on the list; dropped by the list's links, never a filter.
SELECTION_PARAMS = ("selected", "select_all")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _day_start(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of `day` in the current time zone. At 0001-01-01 east of UTC that
    instant is in year 0 in UTC, which Python cannot convert but PostgreSQL takes as sent (an
    ISO string with its offset): no overflow, tested."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _day_after_start(day: datetime.date) -> datetime.datetime | None:
    """The start of the day after `day` (the exclusive end of an "until `day`" range), or None
    at 9999-12-31, which has no day after: nothing is later, so there is no upper bound."""
    if day >= datetime.date.max:
        return None
    return _day_start(day + datetime.timedelta(days=1))


class ResumeSelect(forms.NullBooleanSelect):
    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("", "Any"), ("true", "Has a resume"), ("false", "No resume")]


class TagListField(forms.CharField):
    """Comma-separated free text → a normalised list ("Python, SQL" → ["python", "sql"])."""

    def clean(self, value):
        return normalize_tags(super().clean(value) or "")


class TagListFilter(django_filters.Filter):
    field_class = TagListField


class CandidateFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Search",
        method="filter_nothing",  # applied by candidates.selectors.candidate_list_queryset
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search names, titles, skills, resumes…"}
        ),
    )
    sort = django_filters.ChoiceFilter(
        label="Sort by", choices=SORT_CHOICES, method="filter_nothing", empty_label=None
    )
    skills = TagListFilter(
        label="Skills",
        method="filter_skills",
        help_text="Separate several with commas.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. python, django"}),
    )
    skills_mode = django_filters.ChoiceFilter(
        label="Match",
        choices=[("any", "Any of these skills"), ("all", "All of these skills")],
        method="filter_nothing",
        empty_label=None,
    )
    tags = TagListFilter(
        label="Tags",
        method="filter_tags",
        help_text="Candidates with any of these tags.",
    )
    # distinct=False: a status is a column of the candidate row, so no join can repeat a row;
    # django-filter's default DISTINCT made PostgreSQL sort every match before counting.
    status = django_filters.MultipleChoiceFilter(
        choices=Candidate.Status.choices,
        distinct=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    owner = django_filters.ChoiceFilter(label="Owner", method="filter_owner", empty_label="Anyone")
    source = django_filters.ChoiceFilter(choices=Candidate.Source.choices, empty_label="Any source")
    seniority = django_filters.ChoiceFilter(
        choices=Candidate.Seniority.choices, empty_label="Any seniority"
    )
    city = django_filters.CharFilter(lookup_expr="iexact", max_length=100)
    country = django_filters.CharFilter(lookup_expr="iexact", max_length=100)
    has_resume = django_filters.BooleanFilter(
        label="Resume",
        widget=ResumeSelect,
    )
    created_after = django_filters.DateFilter(
        label="Added from", method="filter_created_after", widget=DateInput
    )
    created_before = django_filters.DateFilter(
        label="Added until", method="filter_created_before", widget=DateInput
    )
    contacted_after = django_filters.DateFilter(
        label="Contacted from", method="filter_contacted_after", widget=DateInput
    )
    contacted_before = django_filters.DateFilter(
        label="Contacted until", method="filter_contacted_before", widget=DateInput
    )
    never_contacted = django_filters.BooleanFilter(
        label="Never contacted", method="filter_never_contacted", widget=forms.CheckboxInput
    )
    # The candidates an import created or updated (linked from the import's summary, so they
    # can be added to a pool or enrolled in a sequence together); not shown in the sidebar.
    import_job = django_filters.NumberFilter(
        method="filter_import_job", widget=forms.HiddenInput, min_value=1
    )

    class Meta:
        model = Candidate
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, organization, custom_fields=None, **kwargs):
        """`custom_fields`: the organisation's active custom fields when the caller has them
        (or knows none are filtered on: a smart pool's saved search without `cf_` keys);
        read here otherwise."""
        self.organization = organization
        if queryset is None:
            queryset = Candidate.objects.live().filter(organization=organization)
        super().__init__(data, queryset=queryset, **kwargs)
        # A callable: the members are read only when the owner filter is shown or used, not
        # for every saved search a smart pool evaluates.
        self.filters["owner"].extra["choices"] = lambda: [
            (UNASSIGNED, "Unassigned"),
            *(
                (str(user.pk), user.display_name)
                for user in candidate_owner_choices(organization=organization)
            ),
        ]
        if custom_fields is None:
            custom_fields = custom_fields_active(organization=organization)
        self.custom_fields = custom_fields
        for field in self.custom_fields:
            for name, filter_ in _custom_field_filters(field).items():
                filter_.field_name = name
                filter_.model = Candidate
                filter_.parent = self
                self.filters[name] = filter_

    # --- filter methods ---

    def filter_nothing(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset

    def filter_skills(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return queryset
        if self.form.cleaned_data.get("skills_mode") == "all":
            return queryset.filter(skills__contains=value)  # @>
        return queryset.filter(skills__overlap=value)  # &&

    def filter_tags(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(tags__overlap=value) if value else queryset

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == UNASSIGNED:
            return queryset.filter(owner__isnull=True)
        return queryset.filter(owner_id=int(value))

    def filter_created_after(self, queryset, name, value):
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_created_before(self, queryset, name, value):
        end = _day_after_start(value)
        return queryset if end is None else queryset.filter(created_at__lt=end)

    def filter_contacted_after(self, queryset, name, value):
        return queryset.filter(contact__last_contacted_at__gte=_day_start(value))

    def filter_contacted_before(self, queryset, name, value):
        end = _day_after_start(value)
        if end is None:  # until the end of time: still only those who were contacted
            return queryset.filter(contact__last_contacted_at__isnull=False)
        return queryset.filter(contact__last_contacted_at__lt=end)

    def filter_never_contacted(self, queryset, name, value):
        return queryset.filter(contact__isnull=True) if value else queryset

    def filter_import_job(self, queryset, name, value):
        if not value:
            return queryset
        imported = Activity.objects.filter(
            organization=self.organization,
            candidate=OuterRef("pk"),
            kind=Activity.Kind.IMPORTED,
            data__job_id=int(value),
        )
        return queryset.filter(Exists(imported))

    # --- for templates ---

    @property
    def custom_field_form_fields(self) -> list:
        names = {name for name in self.form.fields if name.startswith("cf_")}
        return [self.form[name] for name in self.form.fields if name in names]

    @property
    def active_count(self) -> int:
        """How many filters (not the search, sort or skills mode) are in use."""
        if not self.is_bound:
            return 0
        data = self.form.cleaned_data if hasattr(self.form, "cleaned_data") else {}
        ignored = {"q", "sort", "skills_mode"}
        return sum(1 for name, value in data.items() if name not in ignored and value)


def _named_ends(widget, label: str, ends: tuple[str, str]):
    """Give the two inputs of a range widget their own accessible names ("Salary, minimum"):
    the filter's label names the group (a fieldset's legend), not either input."""
    for subwidget, end in zip(widget.widgets, ends, strict=True):
        subwidget.attrs["aria-label"] = f"{label}, {end}"
    return widget


def _number_range_widget(label: str):
    widget = django_filters.widgets.RangeWidget(attrs={"inputmode": "decimal"})
    widget.widgets[0].attrs["placeholder"] = "Min"
    widget.widgets[1].attrs["placeholder"] = "Max"
    return _named_ends(widget, label, ("minimum", "maximum"))


def _date_range_widget(label: str):
    widget = django_filters.widgets.DateRangeWidget(attrs={"type": "date"})
    return _named_ends(widget, label, ("from", "until"))


def _custom_field_filters(field: CustomField) -> dict[str, django_filters.Filter]:
    """The filters of one custom field: exact for choices, contains for text, a range for
    numbers and dates. Values are read from Candidate.custom_fields[key]."""
    name = f"cf_{field.key}"
    text = KeyTextTransform(field.key, "custom_fields")

    if field.field_type == CustomField.FieldType.CHOICE:

        def filter_choice(queryset, _name, value):
            return queryset.alias(**{name: text}).filter(**{name: value}) if value else queryset

        return {
            name: django_filters.ChoiceFilter(
                label=field.label,
                choices=[(choice, choice) for choice in field.choices],
                empty_label="Any",
                method=filter_choice,
            )
        }

    if field.field_type == CustomField.FieldType.NUMBER:
        # Cast only values that look like numbers, so a stray text value cannot fail the query.
        # The Regex lookup on the key's text (not a "custom_fields__<key>__regex" path, which
        # would read a key containing "__" as a nested one).
        number = Case(
            When(Regex(text, NUMBER.pattern), then=Cast(text, FloatField())),
            default=None,
            output_field=FloatField(),
        )

        def filter_number(queryset, _name, value):
            if not value:
                return queryset
            queryset = queryset.alias(**{name: number})
            if value.start is not None:
                queryset = queryset.filter(**{f"{name}__gte": value.start})
            if value.stop is not None:
                queryset = queryset.filter(**{f"{name}__lte": value.stop})
            return queryset

        return {
            name: django_filters.RangeFilter(
                label=field.label,
                method=filter_number,
                widget=_number_range_widget(field.label),
            )
        }

    if field.field_type == CustomField.FieldType.DATE:
        # Dates are stored as ISO strings (YYYY-MM-DD), whose text order is the date order.
        def filter_date(queryset, _name, value):
            if not value:
                return queryset
            queryset = queryset.alias(**{name: text})
            if value.start is not None:
                queryset = queryset.filter(**{f"{name}__gte": value.start.date().isoformat()})
            if value.stop is not None:
                queryset = queryset.filter(**{f"{name}__lte": value.stop.date().isoformat()})
            return queryset

        return {
            name: django_filters.DateFromToRangeFilter(
                label=field.label,
                method=filter_date,
                widget=_date_range_widget(field.label),
            )
        }

    def filter_text(queryset, _name, value):
        return (
            queryset.alias(**{name: text}).filter(**{f"{name}__icontains": value})
            if value
            else queryset
        )

    return {name: django_filters.CharFilter(label=field.label, method=filter_text, max_length=200)}
