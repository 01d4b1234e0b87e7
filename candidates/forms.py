"""Forms of the candidates app. Each area keeps its forms in its own section."""

from decimal import Decimal

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from candidates.models import Candidate, CustomField, Note, number_text
from candidates.normalize import normalize_email, normalize_phone, profile_url_error, tags_clean
from candidates.selectors import candidate_owner_choices
from candidates.services.custom_fields import (
    NUMBER_DECIMAL_PLACES,
    NUMBER_MAX_DIGITS,
    NUMBER_MIN,
    custom_fields_active,
)
from candidates.services.profiles import (
    DUPLICATE_EMAIL_MESSAGE,
    candidate_email_taken,
    organization_phone_region,
    organization_today,
)
from crm.ids import id_from
from crm.models import TIME_ZONE_CHOICES
from crm.templatetags.crm_tags import file_size

# --- profiles ---


def _profile_url(url: str, name: str) -> str:
    if error := profile_url_error(name, url):
        raise ValidationError(error)
    return url


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class ServiceErrorsMixin:
    """Put a service's ValidationError({field: messages}) next to the matching fields; errors
    about fields the form does not show go to the top of the form."""

    def add_service_errors(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, messages in error.message_dict.items():
            self.add_error(name if name in self.fields else None, messages)


CUSTOM_FIELD_PREFIX = "cf_"


class CandidateForm(ServiceErrorsMixin, forms.Form):
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100, required=False)
    headline = forms.CharField(
        max_length=255,
        required=False,
        help_text="One line about them, e.g. “Backend engineer who loves payments”.",
    )
    current_title = forms.CharField(label="Current title", max_length=200, required=False)
    current_company = forms.CharField(label="Current company", max_length=200, required=False)
    seniority = forms.ChoiceField(choices=[("", "—"), *Candidate.Seniority.choices], required=False)
    email = forms.EmailField(max_length=254, required=False)
    alternate_emails = forms.CharField(
        label="Alternate emails",
        required=False,
        help_text="Separate several addresses with commas.",
    )
    phone = forms.CharField(
        max_length=40,
        required=False,
        help_text="Include the country code, e.g. +44 7911 123456.",
    )
    city = forms.CharField(max_length=100, required=False)
    country = forms.CharField(max_length=100, required=False)
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=[("", "Not known"), *TIME_ZONE_CHOICES],
        required=False,
        help_text="Campaign sequences send inside their sending window in this time zone.",
    )
    linkedin_url = forms.URLField(
        label="LinkedIn",
        max_length=500,
        required=False,
        assume_scheme="https",
        error_messages={
            "invalid": "Enter a LinkedIn address, e.g. https://www.linkedin.com/in/jane-doe."
        },
        widget=forms.URLInput(attrs={"placeholder": "https://www.linkedin.com/in/…"}),
    )
    github_url = forms.URLField(
        label="GitHub",
        max_length=500,
        required=False,
        assume_scheme="https",
        error_messages={"invalid": "Enter a GitHub address, e.g. https://github.com/janedoe."},
        widget=forms.URLInput(attrs={"placeholder": "https://github.com/…"}),
    )
    portfolio_url = forms.URLField(
        label="Portfolio or website",
        max_length=500,
        required=False,
        assume_scheme="https",
        error_messages={"invalid": "Enter a web address, e.g. https://janedoe.dev."},
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )
    skills = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Separate skills with commas, e.g. Python, Django, PostgreSQL.",
    )
    tags = forms.CharField(
        required=False, help_text="Separate tags with commas, e.g. silver medallist, remote."
    )
    source = forms.ChoiceField(choices=Candidate.Source.choices, initial=Candidate.Source.SOURCED)
    source_detail = forms.CharField(
        label="Source detail",
        max_length=255,
        required=False,
        help_text="Who referred them, which event, which site…",
    )
    owner = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="Unassigned",
        help_text="The recruiter who owns the relationship.",
    )
    status = forms.ChoiceField(choices=Candidate.Status.choices, initial=Candidate.Status.ACTIVE)
    not_now_until = forms.DateField(
        label="Not now until",
        required=False,
        widget=DateInput(),
        help_text="Needed when the status is “Not now”: when to get back in touch.",
    )
    # Required with the status "Not now" only (clean): the template drops its "(optional)".
    not_now_until.required_with_status = Candidate.Status.NOT_NOW

    # Sections of the form, each a list of rows (fields side by side on wide screens).
    SECTIONS = [
        ("Person", [["first_name", "last_name"], ["headline"]]),
        ("Work", [["current_title", "current_company"], ["seniority"]]),
        ("Contact", [["email", "phone"], ["alternate_emails"], ["city", "country"], ["time_zone"]]),
        ("Links", [["linkedin_url"], ["github_url"], ["portfolio_url"]]),
        ("Skills and tags", [["skills"], ["tags"]]),
        ("Relationship", [["status", "not_now_until"], ["owner"], ["source", "source_detail"]]),
    ]

    def __init__(self, *args, organization, candidate: Candidate | None = None, **kwargs):
        self.organization = organization
        self.candidate = candidate
        if candidate is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(candidate)
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = candidate_owner_choices(
            organization=organization, include=candidate.owner if candidate else None
        )
        self.fields["owner"].label_from_instance = lambda user: user.display_name
        region = organization_phone_region(organization=organization)
        if region:
            code = phonenumbers.country_code_for_region(region)
            help_text = f"Numbers without a country code are read as +{code} numbers."
            self.fields["phone"].help_text = help_text
        self.custom_field_definitions = custom_fields_active(organization=organization)
        # {form field name: stored value} of choice fields whose stored value is no longer one
        # of the field's choices (see _offer_stored_choice).
        self.retired_choices: dict[str, str] = {}
        for field in self.custom_field_definitions:
            name = CUSTOM_FIELD_PREFIX + field.key
            self.fields[name] = self._custom_form_field(field)
            if candidate is not None and field.key in candidate.custom_fields:
                self.initial[name] = candidate.custom_fields[field.key]
                if field.field_type == CustomField.FieldType.NUMBER and not self.is_bound:
                    self._flag_stored_number(name)
                if field.field_type == CustomField.FieldType.CHOICE:
                    self._offer_stored_choice(name, field)

    def _flag_stored_number(self, name: str) -> None:
        """A stored number outside the field's limits (they changed after it was saved) stays
        until the profile is saved again, which refuses it; say so before the recruiter saves."""
        value = self.initial[name]
        try:
            self.fields[name].clean(value)
        except ValidationError as error:
            reason = " ".join(error.messages).rstrip(".")
            self.fields[name].help_text = (
                f"The stored value {value} is no longer allowed ({reason[:1].lower()}"
                f"{reason[1:]}): correct or clear it to save the profile."
            )
            # includes/form_field.html shows such help as a warning, before any save.
            self.fields[name].help_is_warning = True
            self.fields[name].widget.attrs["class"] = "border-warning"

    def _offer_stored_choice(self, name: str, field: CustomField) -> None:
        """A stored choice the field no longer offers (an admin removed it after it was saved)
        stays an option, marked as such, so that saving the profile for another reason keeps
        it; the recruiter can still choose another (`profile_values` leaves it as stored)."""
        stored = str(self.initial[name])
        for choice in field.choices:
            if choice.casefold() == stored.casefold():
                self.initial[name] = choice  # saved as the field now spells it
                return
        self.retired_choices[name] = stored
        self.fields[name].choices = [
            *self.fields[name].choices,
            (stored, f"{stored} (no longer offered)"),
        ]
        self.fields[name].help_text = (
            f"“{stored}” is no longer one of this field's choices; it is kept until you "
            "choose another."
        )
        self.fields[name].help_is_warning = True

    @staticmethod
    def initial_from(candidate: Candidate) -> dict:
        initial = {name: getattr(candidate, name) for name in CandidateForm.base_fields}
        initial["alternate_emails"] = ", ".join(candidate.alternate_emails)
        initial["skills"] = ", ".join(candidate.skills)
        initial["tags"] = ", ".join(candidate.tags)
        initial["owner"] = candidate.owner_id
        return initial

    @staticmethod
    def _custom_form_field(field: CustomField) -> forms.Field:
        common = {"label": field.label, "required": False}
        if field.field_type == CustomField.FieldType.NUMBER:
            # The field's own limits name themselves in the error ("At most 60.") and become
            # the input's min and max attributes, written as people write them (60, not 60.0000).
            low, high = field.min_value, field.max_value
            messages = {}
            if low is not None:
                messages["min_value"] = f"At least {number_text(low)}."
            if high is not None:
                messages["max_value"] = f"At most {number_text(high)}."
            if field.limits_text:
                common["help_text"] = f"{capfirst(field.limits_text)}."
            return forms.DecimalField(
                max_digits=NUMBER_MAX_DIGITS,
                decimal_places=NUMBER_DECIMAL_PLACES,
                min_value=NUMBER_MIN if low is None else Decimal(number_text(low)),
                max_value=None if high is None else Decimal(number_text(high)),
                error_messages=messages,
                **common,
            )
        if field.field_type == CustomField.FieldType.DATE:
            return forms.DateField(widget=DateInput(), **common)
        if field.field_type == CustomField.FieldType.CHOICE:
            return forms.ChoiceField(
                choices=[("", "—"), *[(c, c) for c in field.choices]], **common
            )
        return forms.CharField(max_length=1000, **common)

    @property
    def sections(self):
        sections = [
            (title, [[self[name] for name in row] for row in rows]) for title, rows in self.SECTIONS
        ]
        if self.custom_field_definitions:
            names = [CUSTOM_FIELD_PREFIX + field.key for field in self.custom_field_definitions]
            rows = [[self[name] for name in names[i : i + 2]] for i in range(0, len(names), 2)]
            sections.append(("Custom fields", rows))
        return sections

    def clean_email(self):
        email = normalize_email(self.cleaned_data["email"])
        exclude_id = self.candidate.pk if self.candidate else None
        if candidate_email_taken(
            organization=self.organization, email=email, exclude_id=exclude_id
        ):
            raise ValidationError(self._duplicate_email_message(email, exclude_id))
        return email

    def _duplicate_email_message(self, email: str, exclude_id: int | None) -> str:
        """The duplicate-email error, with a link to the profile that has the address: the
        recruiter most likely wants to open it rather than type a second one."""
        existing = (
            Candidate.objects.live()
            .filter(organization=self.organization, email__iexact=email)
            .exclude(pk=exclude_id)
            .only("pk", "first_name", "last_name")
            .first()
        )
        if existing is None:
            return DUPLICATE_EMAIL_MESSAGE
        url = reverse("candidates:detail", args=[self.organization.slug, existing.pk])
        return format_html(
            '{} <a href="{}">Open {}\u2019s profile</a>.',
            DUPLICATE_EMAIL_MESSAGE,
            url,
            existing.full_name,
        )

    def clean_alternate_emails(self):
        values = self.cleaned_data["alternate_emails"].replace(";", ",").split(",")
        emails = []
        for value in values:
            email = normalize_email(value)
            if not email:
                continue
            try:
                forms.EmailField().clean(email)
            except ValidationError as error:
                raise ValidationError(f"“{email}” is not a valid email address.") from error
            if email not in emails:
                emails.append(email)
        return emails

    def clean_phone(self):
        try:
            return normalize_phone(
                self.cleaned_data["phone"],
                default_region=organization_phone_region(organization=self.organization),
            )
        except ValidationError as error:
            raise ValidationError(
                "This does not look like a valid phone number. Check the digits and the country "
                "code (e.g. +44 7911 123456)."
            ) from error

    def clean_linkedin_url(self):
        return _profile_url(self.cleaned_data["linkedin_url"], "linkedin_url")

    def clean_github_url(self):
        return _profile_url(self.cleaned_data["github_url"], "github_url")

    def clean_skills(self):
        return tags_clean(self.cleaned_data["skills"])

    def clean_tags(self):
        return tags_clean(self.cleaned_data["tags"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("status") == Candidate.Status.NOT_NOW and not cleaned.get("not_now_until"):
            self.add_error(
                "not_now_until", "Say until when the candidate does not want to hear from you."
            )
        return cleaned

    def profile_values(self) -> dict:
        """The cleaned values in the shape candidate_create / candidate_update take."""
        values = {name: self.cleaned_data[name] for name in self.base_fields}
        values["custom_fields"] = {}
        for field in self.custom_field_definitions:
            name = CUSTOM_FIELD_PREFIX + field.key
            value = self.cleaned_data.get(name)
            # A choice no longer offered, left unchanged: kept as stored (left out, because
            # the service would refuse it as a new value).
            if name in self.retired_choices and value == self.retired_choices[name]:
                continue
            values["custom_fields"][field.key] = value
        return values


# Notes show as Markdown (candidates/templatetags/notes.py).
NOTE_MARKDOWN_HELP = "Markdown works: **bold**, *italic*, lists and [links](https://…)."


class NoteForm(ServiceErrorsMixin, forms.Form):
    body = forms.CharField(
        label="Add a note",
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What did you learn? Next steps?"}),
        help_text=NOTE_MARKDOWN_HELP,
    )
    contact = forms.ChoiceField(
        label="This note records",
        choices=[("", "Just a note"), *Note.Contact.choices],
        required=False,
        help_text="A call, meeting or message updates “last contacted”.",
    )
    pinned = forms.BooleanField(label="Pin to the top of the profile", required=False)


class NoteEditForm(ServiceErrorsMixin, forms.Form):
    body = forms.CharField(
        label="Edit note",
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4, "autofocus": True}),
        help_text=NOTE_MARKDOWN_HELP,
    )


class CustomFieldForm(ServiceErrorsMixin, forms.Form):
    label = forms.CharField(max_length=100)
    field_type = forms.ChoiceField(
        label="Type",
        choices=CustomField.FieldType.choices,
        help_text="The type cannot be changed later.",
    )
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For choice fields: one choice per line.",
    )
    # Checked by the service (custom_field_create/update), which ignores them for any type but
    # number: text here, so that what is typed for another type is no error.
    min_value = forms.CharField(
        label="Minimum",
        required=False,
        widget=forms.NumberInput(attrs={"min": NUMBER_MIN, "step": "any"}),
        help_text="For number fields: the smallest value a candidate may have. Leave empty for "
        f"no limit (numbers are never below {NUMBER_MIN}).",
    )
    max_value = forms.CharField(
        label="Maximum",
        required=False,
        widget=forms.NumberInput(attrs={"min": NUMBER_MIN, "step": "any"}),
        help_text="For number fields: the largest value a candidate may have. Leave empty for "
        "no limit.",
    )
    key = forms.SlugField(
        max_length=50,
        required=False,
        help_text="Used in imports, filters and email merge fields. Leave empty to derive it from the label.",
    )
    position = forms.IntegerField(
        min_value=0, max_value=999, required=False, help_text="Lower numbers come first."
    )

    def __init__(self, *args, organization, field: CustomField | None = None, **kwargs):
        self.organization = organization
        self.instance = field
        if field is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "label": field.label,
                "field_type": field.field_type,
                "choices": "\n".join(field.choices),
                "min_value": "" if field.min_value is None else number_text(field.min_value),
                "max_value": "" if field.max_value is None else number_text(field.max_value),
                "key": field.key,
                "position": field.position,
            }
        super().__init__(*args, **kwargs)
        if field is not None:
            for name in ("field_type", "key"):
                self.fields[name].disabled = True
                self.fields[name].required = True
            self.fields["field_type"].help_text = "The type is fixed once the field exists."
            self.fields["key"].help_text = "Used in imports, filters and email merge fields."
            if field.field_type == CustomField.FieldType.CHOICE:
                self.fields["choices"].required = True
                self.fields["choices"].help_text = "One choice per line."
            else:
                del self.fields["choices"]
            if field.field_type == CustomField.FieldType.NUMBER:
                low, high = self.fields["min_value"], self.fields["max_value"]
                low.help_text = (
                    "The smallest value a candidate may have; empty for no limit. Values stored "
                    "before a limit changed stay as they are until their profile is next saved, "
                    "which then asks for a value inside the limits."
                )
                high.help_text = "The largest value a candidate may have; empty for no limit."
            else:
                del self.fields["min_value"], self.fields["max_value"]

    def clean_label(self):
        """Two fields with one label would show as the same question on every form."""
        label = self.cleaned_data["label"]
        wanted = " ".join(label.split()).casefold()
        for other in custom_fields_active(organization=self.organization):
            if other != self.instance and " ".join(other.label.split()).casefold() == wanted:
                raise ValidationError(
                    f"There is already a field called “{other.label}”; choose another label."
                )
        return label

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("field_type") == CustomField.FieldType.CHOICE
            and not (cleaned.get("choices") or "").strip()
        ):
            self.add_error("choices", "A choice field needs at least one choice.")
        return cleaned


# --- attachments ---


def _attachment_kind_choices():
    from candidates.models import Attachment

    return Attachment.Kind.choices


class AttachmentUploadForm(forms.Form):
    """A resume or another file. The type is judged from the content, not the name."""

    file = forms.FileField(
        label="File",
        help_text="PDF or Word (.docx), up to 10 MB.",
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".pdf,.docx,application/pdf,"
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
        ),
    )
    kind = forms.ChoiceField(label="Kind", choices=_attachment_kind_choices, initial="resume")

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        from candidates.services.attachments import MAX_UPLOAD_BYTES

        super().__init__(*args, **kwargs)
        limit = getattr(settings, "ATTACHMENT_MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES)
        self.fields["file"].help_text = f"PDF or Word (.docx), up to {file_size(limit)}."

    def clean_file(self):
        from candidates.services.attachments import attachment_inspect

        uploaded_file = self.cleaned_data["file"]
        attachment_inspect(uploaded_file=uploaded_file)  # raises ValidationError for people
        return uploaded_file


# --- merge ---


class MergeTargetForm(forms.Form):
    """Which profile to merge into the primary: any other live candidate of the organisation
    (the id comes from the browser, so it is checked against the organisation)."""

    other = forms.ModelChoiceField(queryset=None, widget=forms.HiddenInput)

    def __init__(self, *args, organization, primary, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["other"].queryset = (
            Candidate.objects.live()
            .filter(organization=organization)
            .exclude(pk=primary.pk)
            .select_related("owner")
        )


class MergeForm(MergeTargetForm):
    """One radio group per field on which the two profiles differ: keep which value?"""

    def __init__(self, *args, organization, primary, secondary, **kwargs):
        from candidates.services.merge import (
            CUSTOM_PREFIX,
            merge_default_choice,
            merge_differences,
        )

        super().__init__(*args, organization=organization, primary=primary, **kwargs)
        self.fields["other"].initial = secondary.pk
        self.primary, self.secondary = primary, secondary
        self.choice_names: dict[str, str] = {}  # form field name -> merge field name
        labels = {
            field.key: field.label
            for field in CustomField.objects.filter(organization=organization)
        }
        differences = merge_differences(primary=primary, secondary=secondary)
        # Where the statuses differ too, the "not now" date goes with the status chosen (its
        # row says "Not now until 2 Jan 2030"): a date of its own would let a merge keep
        # "Do not contact" with the other profile's date, or a "not now" without its date.
        self.date_with_status = "status" in differences and "not_now_until" in differences
        for name in differences:
            if name == "not_now_until" and self.date_with_status:
                continue
            if name.startswith(CUSTOM_PREFIX):
                key = name.removeprefix(CUSTOM_PREFIX)
                label = labels.get(key, key)
                form_name = f"choice_custom__{key}"
            else:
                label = Candidate._meta.get_field(name).verbose_name
                form_name = f"choice_{name}"
            self.choice_names[form_name] = name
            self.fields[form_name] = forms.ChoiceField(
                label=label[:1].upper() + label[1:],
                choices=[
                    ("primary", _merge_display(primary, name)),
                    ("secondary", _merge_display(secondary, name)),
                ],
                initial=merge_default_choice(primary=primary, secondary=secondary, name=name),
                required=False,  # not answered: merge_default_choice
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
            )

    @property
    def choice_fields(self):
        return [self[form_name] for form_name in self.choice_names]

    def field_choices(self) -> dict[str, str]:
        from candidates.services.merge import merge_default_choice

        choices = {
            name: self.cleaned_data[form_name] for form_name, name in self.choice_names.items()
        }
        if self.date_with_status:
            choices["not_now_until"] = choices["status"] or merge_default_choice(
                primary=self.primary, secondary=self.secondary, name="status"
            )
        return choices


def _merge_display(candidate, name: str) -> str:
    """A field's value as a person reads it ('' when empty). A "not now" reads as on the
    profile, "Not now until 2 Jan 2030", and one without a date says that it has none (it
    never ends), rather than looking empty."""
    from django.utils.dateformat import format as date_format

    from candidates.services.merge import CUSTOM_PREFIX

    if name.startswith(CUSTOM_PREFIX):
        value = candidate.custom_fields.get(name.removeprefix(CUSTOM_PREFIX))
        return "" if value is None else str(value)
    if name == "owner":
        return candidate.owner.display_name if candidate.owner else ""
    not_now = candidate.status == Candidate.Status.NOT_NOW
    until = candidate.not_now_until
    if name == "status" and not_now:
        return f"Not now until {date_format(until, 'j M Y')}" if until else "Not now — no end date"
    if name == "not_now_until":
        if until:
            return date_format(until, "j M Y")
        return "No end date" if not_now else ""
    field = Candidate._meta.get_field(name)
    value = getattr(candidate, name)
    if field.choices and value:
        return str(getattr(candidate, f"get_{name}_display")())
    return "" if value is None else str(value)


# --- list, bulk ---


class SavedSearchForm(forms.Form):
    name = forms.CharField(
        label="Name this search",
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Senior Python engineers in Berlin"}),
    )
    # The list page's query string at the moment of saving.
    query = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Give the search a name.")
        return name


class SavedSearchRenameForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        error_messages={"required": "Give the search a name."},
    )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Give the search a name.")
        return name


class IdListField(forms.Field):
    """Repeated `ids=…` parameters → a list of distinct positive ints."""

    widget = forms.MultipleHiddenInput
    hidden_widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str):
            value = value.split(",")
        ids = []
        for item in value:
            pk = id_from(item)
            if pk is None:
                raise ValidationError("The selection is not valid; go back and select again.")
            ids.append(pk)
        if len(ids) > 10000:
            raise ValidationError("Select fewer candidates, or use “all matching”.")
        return sorted(set(ids))


class BulkSelectionForm(forms.Form):
    """What a bulk action acts on, carried from the list to the confirmation and back."""

    from candidates.services.bulk import ACTIONS as _ACTIONS

    action = forms.ChoiceField(
        choices=list(_ACTIONS.items()),
        error_messages={
            "required": "Choose what to do with the selected candidates.",
            "invalid_choice": "Choose what to do with the selected candidates.",
        },
    )
    ids = IdListField(required=False)

    def __init__(self, *args, **kwargs):
        from candidates.panels import BULK_DESTINATIONS

        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [
            *self._ACTIONS.items(),
            *((d.action, d.label) for d in BULK_DESTINATIONS.values()),
        ]

    select_all = forms.BooleanField(required=False, widget=forms.HiddenInput)
    query = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if not data.get("select_all") and not data.get("ids") and "ids" not in self.errors:
            raise ValidationError("Select at least one candidate first.")
        return data


class BulkArgumentsForm(forms.Form):
    """The arguments of one bulk action; only the fields that action needs are kept."""

    tags = forms.CharField(
        label="Tags",
        max_length=500,
        help_text="Separate several with commas.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. shortlist, q3 outreach"}),
    )
    owner = forms.ChoiceField(label="New owner")
    status = forms.ChoiceField(label="New status", choices=Candidate.Status.choices)
    not_now_until = forms.DateField(
        label="Not now until",
        required=False,
        widget=DateInput(),
        help_text="Needed for “Not now”: the day they come back to active, with a follow-up "
        "for their owner.",
    )
    not_now_until.required_with_status = Candidate.Status.NOT_NOW
    # "Do not contact" stops every campaign email to them: asked for on the confirmation page
    # (shown there while that status is chosen), refused without it.
    confirm_do_not_contact = forms.BooleanField(
        label="Yes, stop all campaign email to these candidates",
        required=False,
    )
    export_format = forms.ChoiceField(
        label="Format", widget=forms.RadioSelect, initial="csv", choices=[]
    )

    FIELDS_BY_ACTION = {
        "tag": ["tags"],
        "untag": ["tags"],
        "owner": ["owner"],
        "status": ["status", "not_now_until", "confirm_do_not_contact"],
        "export": ["export_format"],
        "delete": [],
    }

    def __init__(self, *args, organization, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        from candidates.services.export import FORMATS

        self.organization = organization

        keep = self.FIELDS_BY_ACTION.get(action, [])
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "owner" in self.fields:
            self.owners = {
                str(user.pk): user for user in candidate_owner_choices(organization=organization)
            }
            self.fields["owner"].choices = [
                ("", "Unassigned"),
                *((pk, user.display_name) for pk, user in self.owners.items()),
            ]
            self.fields["owner"].required = False
        if "export_format" in self.fields:
            self.fields["export_format"].choices = [
                (key, label) for key, (label, _) in FORMATS.items()
            ]

    def clean_tags(self):
        tags = tags_clean(self.cleaned_data["tags"])
        if not tags:
            raise ValidationError("Enter at least one tag.")
        return tags

    def clean(self):
        data = super().clean()
        if "status" in self.fields:
            until = data.get("not_now_until")
            if data.get("status") == Candidate.Status.NOT_NOW:
                if not until and "not_now_until" not in self.errors:
                    self.add_error(
                        "not_now_until",
                        "Say until when these candidates do not want to hear from you.",
                    )
                elif until and until <= organization_today(organization=self.organization):
                    # The organisation's calendar, as on a profile (not the server's).
                    self.add_error("not_now_until", "Choose a date in the future.")
            else:
                data["not_now_until"] = None
            if data.get("status") == Candidate.Status.DO_NOT_CONTACT and not data.get(
                "confirm_do_not_contact"
            ):
                self.add_error(
                    "confirm_do_not_contact",
                    "Tick this to confirm: “Do not contact” stops all campaign email to them.",
                )
        return data

    def action_args(self) -> dict:
        data = self.cleaned_data
        if "tags" in data:
            return {"tags": data["tags"]}
        if "owner" in self.fields:
            owner = self.owners.get(data.get("owner") or "")
            return {
                "owner_id": owner.pk if owner else None,
                "owner_name": owner.display_name if owner else "",
            }
        if "status" in data:
            until = data.get("not_now_until")
            return {"status": data["status"], "not_now_until": until.isoformat() if until else None}
        return {}


# --- import ---


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="Spreadsheet",
        help_text="A CSV or Excel (.xlsx) file whose first row names the columns.",
        # Django's own "This field is required." and "The submitted file is empty." say
        # neither what was expected nor what to do next.
        error_messages={
            "required": "Choose a CSV or Excel (.xlsx) file to upload.",
            "empty": "This file is empty. Upload a CSV or Excel (.xlsx) file with a header row "
            "and candidates under it.",
        },
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.tsv,.txt,.xlsx,text/csv,text/tab-separated-values,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
    )

    def clean_file(self):
        from candidates.importing.reading import ImportFileError, inspect_file, max_upload_bytes

        upload = self.cleaned_data["file"]
        limit = max_upload_bytes()
        if upload.size > limit:
            raise ValidationError(
                f"The file is larger than {limit // (1024 * 1024)} MB. Split it into smaller files."
            )
        try:
            self.info = inspect_file(upload)
        except ImportFileError as error:
            raise ValidationError(str(error)) from error
        return upload


def _phone_region_choices() -> list[tuple[str, str]]:
    import phonenumbers
    from phonenumbers import geocoder

    regions = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        code = phonenumbers.country_code_for_region(region)
        regions.append((region, f"{name or region} (+{code})"))
    regions.sort(key=lambda choice: choice[1])
    return [("", "None — numbers must start with + and the country code"), *regions]


def phone_region_label(region: str) -> str:
    """'GB' -> 'United Kingdom (+44)', as the import's country choice names it."""
    return dict(_phone_region_choices()).get(region, region)


class ImportMappingForm(forms.Form):
    """One "import as" select per column of the file, then the import's options."""

    duplicates = forms.ChoiceField(
        label="When a row's email matches an existing candidate",
        choices=[
            (
                "fill",
                "Fill in the candidate's empty fields (what it has stays; skills and tags "
                "are added)",
            ),
            ("update", "Update the candidate: the row's non-empty cells replace its values"),
            ("skip", "Skip the row and leave the candidate as it is"),
        ],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        initial="fill",
    )
    tags = forms.CharField(
        label="Tags to add to every imported candidate",
        required=False,
        max_length=500,
        help_text="Separate tags with commas, e.g. “berlin meetup, 2025”.",
    )
    source = forms.ChoiceField(label="Source", choices=Candidate.Source.choices, initial="import")
    phone_region = forms.ChoiceField(
        label="Country of phone numbers written without a country code", required=False
    )
    not_now_days = forms.TypedChoiceField(
        label="Candidates marked “Not now” without a date come back to active",
        choices=[(30, "In a month"), (90, "In 3 months"), (180, "In 6 months"), (365, "In a year")],
        coerce=int,
        empty_value=90,
        required=False,
        initial=90,
        help_text="Each one also gets a follow-up for their owner on that day. A “Not now until” "
        "column, when the file has one, gives each row its own date.",
    )

    def __init__(self, *args, headers: list[str], samples: list[list[str]], custom_fields, **kw):
        from candidates.importing.fields import target_choices

        super().__init__(*args, **kw)
        self.headers = headers
        self.target_labels = {}
        choices = target_choices(custom_fields)
        for group in choices:
            if isinstance(group[1], list | tuple):
                self.target_labels.update(dict(group[1]))
        self.columns = []
        for index, header in enumerate(headers):
            name = f"column_{index}"
            self.fields[name] = forms.ChoiceField(
                label=f"Import “{header}” as", choices=choices, required=False
            )
            values = [row[index] for row in samples if index < len(row) and row[index].strip()]
            distinct = list(dict.fromkeys(values))[:3]
            self.columns.append({"header": header, "field": self[name], "samples": distinct})
        self.fields["phone_region"].choices = _phone_region_choices()

    def clean_tags(self):
        return tags_clean(self.cleaned_data["tags"])

    def clean(self):
        cleaned = super().clean()
        used: dict[str, str] = {}
        for index, header in enumerate(self.headers):
            target = cleaned.get(f"column_{index}") or ""
            if not target:
                continue
            if target in used:
                label = self.target_labels.get(target, target)
                self.add_error(
                    f"column_{index}",
                    f"“{used[target]}” is already imported as {label}. Choose another field "
                    "or “Don't import”.",
                )
            used.setdefault(target, header)
        if not {"first_name", "full_name"} & set(used):
            raise ValidationError(
                "Choose the column that holds the candidates' names: import it as "
                "First name or Full name."
            )
        return cleaned

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(f"column_{i}") or "" for i in range(len(self.headers))]

    def options(self) -> dict:
        data = self.cleaned_data
        return {
            "duplicates": data["duplicates"],
            "tags": data["tags"],
            "source": data["source"],
            "phone_region": data.get("phone_region") or "",
            "not_now_days": data.get("not_now_days") or 90,
        }
