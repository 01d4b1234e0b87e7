"""Forms of the pipelines app. Choice fields get the organisation's querysets in __init__
(never at import time)."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from candidates.models import SavedSearch
from crm.ids import id_from
from pipelines import services
from pipelines.models import FollowUp, HiringRole, Pool, Stage


class ServiceErrorsMixin:
    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, error)


class DateAheadInput(forms.DateInput):
    """The date picker of a `DateAheadField`: its `max` is the latest date allowed, worked out
    from today each time it renders."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")

    def get_context(self, name, value, attrs):
        latest = services.latest_date_ahead(today=timezone.localdate())
        return super().get_context(name, value, {"max": latest.isoformat(), **(attrs or {})})


class DateAheadField(forms.DateField):
    """A date at most `services.YEARS_AHEAD` years from today: the date picker's `max`, and the
    same limit when the form is cleaned."""

    widget = DateAheadInput

    def validate(self, value):
        super().validate(value)
        latest = services.latest_date_ahead(today=timezone.localdate())
        if value is not None and value > latest:
            raise ValidationError(
                f"Choose a date within {services.YEARS_AHEAD} years (by {latest:%-d %b %Y})."
            )


class PoolForm(ServiceErrorsMixin, forms.ModelForm):
    # Declared (not generated from the model) so that no queryset is built at import time.
    saved_search = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Saved search",
        help_text="Smart pools hold everyone this search finds, kept up to date automatically. "
        "Save searches on the candidate list.",
    )

    class Meta:
        model = Pool
        fields = ["name", "description", "kind", "saved_search", "visibility", "color", "icon"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "kind": forms.RadioSelect(attrs={"class": "form-check-input"}),
            "visibility": forms.RadioSelect(attrs={"class": "form-check-input"}),
        }
        labels = {"kind": "Membership", "visibility": "Who can see it"}

    def __init__(self, *args, organization, user, **kwargs):
        super().__init__(*args, **kwargs)
        saved = SavedSearch.objects.filter(organization=organization, owner=user)
        current = self.instance.saved_search_id if self.instance.pk else None
        if current:
            saved = saved | SavedSearch.objects.filter(organization=organization, pk=current)
        self.fields["saved_search"].queryset = saved.order_by("name")
        self.fields["saved_search"].empty_label = "Choose one of your saved searches"
        self.fields["saved_search"].widget.attrs["data-pool-saved-search"] = ""
        self.fields["kind"].choices = Pool.Kind.choices
        self.fields["visibility"].choices = Pool.Visibility.choices

    def clean(self):
        data = super().clean()
        if data.get("kind") == Pool.Kind.SMART and not data.get("saved_search"):
            self.add_error("saved_search", "A smart pool needs a saved search.")
        if data.get("kind") == Pool.Kind.STATIC:
            data["saved_search"] = None
        return data


class StageForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=60)
    outcome = forms.ChoiceField(
        choices=Stage.Outcome.choices,
        initial=Stage.Outcome.OPEN,
        help_text="Won and lost stages end the funnel in reports.",
    )


class MoveForm(forms.Form):
    stage = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, stages: list[Stage], **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {stage.pk: stage for stage in stages}
        self.fields["stage"].choices = [(stage.pk, stage.name) for stage in stages]

    @property
    def target_stage(self) -> Stage:
        return self.stages[self.cleaned_data["stage"]]


class BulkMoveForm(MoveForm):
    membership = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integers: the service keeps only cards of this pool.
        values = self.data.getlist("membership") if hasattr(self.data, "getlist") else []
        self.fields["membership"].choices = [(v, v) for v in values if id_from(v) is not None]
        self.fields["membership"].error_messages["required"] = "Select at least one card."


class BoardFilterForm(forms.Form):
    q = forms.CharField(
        label="Search this pool",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, title, company…"}),
    )
    owner = forms.ChoiceField(label="Owner", required=False)

    def __init__(self, *args, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [
            ("", "Any owner"),
            ("unassigned", "Unassigned"),
            *((str(user.pk), user.display_name) for user in owners),
        ]

    def filters(self) -> dict:
        if not self.is_valid():
            return {"q": "", "owner": ""}
        return {"q": self.cleaned_data["q"], "owner": self.cleaned_data["owner"]}


class AddToPoolForm(forms.Form):
    """Choose the pool for a selection of candidates (ids or a filter query string)."""

    pool = forms.ModelChoiceField(queryset=None, empty_label="Choose a pool")
    candidate = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    query = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)

    def __init__(self, *args, pools, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].queryset = pools
        values = []
        if hasattr(self.data, "getlist"):
            values = self.data.getlist("candidate")
        self.fields["candidate"].choices = [(v, v) for v in values if id_from(v) is not None]
        self.fields["candidate"].widget = forms.MultipleHiddenInput()

    def clean(self):
        data = super().clean()
        if not data.get("candidate") and not data.get("query"):
            raise ValidationError("Select some candidates first.")
        return data


class RoleForm(ServiceErrorsMixin, forms.ModelForm):
    pools = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        help_text="The pools you will hire this role from.",
    )

    class Meta:
        model = HiringRole
        fields = ["title", "team", "location", "target_date", "headcount", "status", "notes"]
        field_classes = {"target_date": DateAheadField}
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, pools, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pools"].queryset = pools
        self.fields["headcount"].min_value = 1
        self.fields["headcount"].widget.attrs["min"] = 1
        if self.instance.pk:
            self.fields["pools"].initial = list(
                self.instance.role_pools.values_list("pool_id", flat=True)
            )

    def clean_headcount(self):
        value = self.cleaned_data["headcount"]
        if value < 1:
            raise ValidationError("At least one hire.")
        return value


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["due_on", "note", "owner"]
        field_classes = {"due_on": DateAheadField}
        labels = {"due_on": "Due on", "owner": "For"}

    def __init__(self, *args, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners
        self.fields["owner"].empty_label = "Unassigned"
        self.fields["note"].widget.attrs["placeholder"] = "e.g. Ask about the new team lead role"

    def clean_due_on(self):
        # A new date in the past is a slip of the year or the month: the follow-up would be
        # overdue at once. An overdue follow-up keeps its date while its note or owner changes.
        value = self.cleaned_data["due_on"]
        unchanged = self.instance.pk is not None and value == self.instance.due_on
        if value < timezone.localdate() and not unchanged:
            raise ValidationError("Choose today or a later date.")
        return value


class PoolPickForm(forms.Form):
    """The profile's "Add to pool" select."""

    pool = forms.ModelChoiceField(queryset=None, empty_label="Choose a pool")

    def __init__(self, *args, pools, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].queryset = pools
