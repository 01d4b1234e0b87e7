"""Forms of the campaigns app. Tenant-dependent choices get their querysets in __init__."""

import re
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from campaigns.models import CandidateEmailPreference, EmailSettings, EmailTemplate, Message
from campaigns.services.branding import brand_color_problem
from campaigns.services.campaigns import archived_pool_problem
from campaigns.services.messages import address_name_problem
from campaigns.services.preferences import archived_topics_received, pause_end
from campaigns.services.role_families import role_family_choices
from campaigns.services.topics import topic_choices
from candidates.models import Candidate, SavedSearch
from candidates.normalize import normalize_email
from crm.models import Organization, brand_color_validator
from pipelines.models import Pool
from pipelines.selectors import PRIVATE_POOL_NAME, pool_visible_to, pools_visible

# How far ahead a broadcast can be scheduled or a warm-up can start.
SCHEDULE_HORIZON = timedelta(days=365)
SCHEDULE_HORIZON_PROBLEM = "Choose a time within the next 12 months."
# Bounds of the number inputs: realistic, and well inside their database columns
# (PositiveIntegerField up to 2147483647, PositiveSmallIntegerField up to 32767).
MAX_EMAILS_PER_DAY = 1_000_000
AUDIENCE_MISSING = "Choose who receives it: at least one saved search or talent pool."
AUDIENCE_MISSING_CODE = "no_audience"


def org_wall_clock_to_aware(when: datetime, *, time_zone: str) -> datetime | None:
    """A wall-clock time typed in the organisation's time zone, as an aware datetime (None
    when it cannot be one: at the edge of the calendar, 9999-12-31 23:59 in Los Angeles is
    already in year 10000 in UTC). `when` is what a DateTimeField cleaned: the wall clock,
    made aware in the current time zone."""
    try:
        wall_clock = timezone.make_naive(when)
        aware = timezone.make_aware(wall_clock, ZoneInfo(time_zone))
        aware.astimezone(UTC)  # raises OverflowError past the end of the calendar in UTC
    except (OverflowError, ValueError):
        return None
    return aware


BODY_HELP = (
    "Markdown: **bold**, *italic*, [link text](https://…), lists with “- ”. "
    'Merge fields in double braces: {{ first_name|default("there") }}.'
)


class ServiceErrorsMixin:
    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        else:
            self.add_error(None, error)


class EmailFieldsForm(ServiceErrorsMixin, forms.Form):
    subject = forms.CharField(max_length=255)
    preheader = forms.CharField(
        max_length=255,
        required=False,
        help_text="The preview line inboxes show after the subject.",
    )
    body_markdown = forms.CharField(
        label="Body",
        widget=forms.Textarea(attrs={"rows": 14, "class": "font-monospace email-body-input"}),
        help_text=BODY_HELP,
    )

    def __init__(self, *args, read_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if read_only:  # a viewer reads the email but cannot change it
            for field in self.fields.values():
                field.disabled = True


class EmailTemplateForm(EmailFieldsForm):
    name = forms.CharField(max_length=150, help_text="Only your team sees it.")
    field_order = ["name", "subject", "preheader", "body_markdown"]

    def __init__(self, *args, template: EmailTemplate | None = None, **kwargs):
        if template is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": template.name,
                "subject": template.subject,
                "preheader": template.preheader,
                "body_markdown": template.body_markdown,
            }
        super().__init__(*args, **kwargs)


def comma_list(value: str, *, name: str, limit: int = 10) -> list[str]:
    """ "Berlin,  lisbon , Berlin" → ["Berlin", "lisbon"]: trimmed, spaces collapsed, the
    first spelling of each once; at most `limit` items of at most 60 characters."""
    items = list(dict.fromkeys(" ".join(part.split()) for part in value.split(",")))
    items = [item for item in items if item]
    if len(items) > limit:
        raise ValidationError(f"Name at most {limit} {name}.")
    if any(len(item) > 60 for item in items):
        raise ValidationError("Keep each one under 60 characters.")
    return items


class InterestTargetingForm(forms.Form):
    """A campaign's targeting by what candidates told the preference centre (broadcasts and
    sequences). Call `interest_fields_setup` in __init__: the choices are the organisation's."""

    interest_role_families = forms.MultipleChoiceField(
        label="Only candidates interested in",
        choices=[],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
        help_text="Role families candidates chose in their preference centre. "
        "None ticked: whatever their interests.",
    )
    interest_locations = forms.CharField(
        label="…and in these locations",
        max_length=1300,
        required=False,
        help_text="Cities or regions, separated with commas. Matched, whatever the case, with "
        "the places candidates named and the city they live in; “Remote” also finds those "
        "open to remote work.",
    )
    interest_include_unstated = forms.BooleanField(
        label="Also include candidates who haven't told us their interests",
        required=False,
        initial=True,
    )

    def interest_fields_setup(self, *, organization, chosen: list[str] = ()) -> None:
        self.fields["interest_role_families"].choices = role_family_choices(
            organization=organization, keep=list(chosen)
        )

    def clean_interest_locations(self):
        return comma_list(self.cleaned_data["interest_locations"], name="locations", limit=20)


def pool_label(pool, *, user) -> str:
    """A pool's choice label: a colleague's private pool that a campaign keeps is not named."""
    name = pool.name if pool_visible_to(pool=pool, user=user) else PRIVATE_POOL_NAME
    return f"{name} (archived)" if pool.archived_at else name


class BroadcastForm(ServiceErrorsMixin, InterestTargetingForm):
    SEND_NOW, SEND_LATER = "now", "later"

    name = forms.CharField(max_length=150, help_text="Only your team sees it.")
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(),
        empty_label="Choose a template",
        help_text="The email is copied from it; you can still edit the copy before launch.",
    )
    topic = forms.ChoiceField(
        choices=[],
        help_text="Candidates who opted out of this topic are not sent to.",
    )
    saved_searches = forms.ModelMultipleChoiceField(
        label="Send to",
        queryset=SavedSearch.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
        help_text="Everyone found by any of these saved searches.",
    )
    pools = forms.ModelMultipleChoiceField(
        label="…and to these talent pools",
        queryset=Pool.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
        help_text="Everyone in any of these pools (smart pools: everyone matching their search).",
    )
    excluded_saved_searches = forms.ModelMultipleChoiceField(
        label="Leave out",
        queryset=SavedSearch.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
        help_text="Everyone found by any of these is left out.",
    )
    excluded_pools = forms.ModelMultipleChoiceField(
        label="Leave out these pools",
        queryset=Pool.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
        help_text="Everyone in any of these pools is left out.",
    )
    send_when = forms.ChoiceField(
        label="When",
        choices=[(SEND_NOW, "As soon as I launch it"), (SEND_LATER, "At a time I choose")],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        initial=SEND_NOW,
    )
    scheduled_at = forms.DateTimeField(
        label="Send at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Only when sending at a time you choose; in your organisation's time zone.",
    )

    def __init__(self, *args, organization, user, campaign=None, **kwargs):
        if campaign is not None:  # a draft's settings: its email is edited on its own page
            kwargs.setdefault("initial", self._initial_from(campaign, organization=organization))
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.campaign = campaign
        self.user = user
        self.fields["scheduled_at"].help_text = (
            "Only when sending at a time you choose; in your organisation's time zone, "
            f"{organization.get_time_zone_display()}."
        )
        self.fields["template"].queryset = EmailTemplate.objects.filter(organization=organization)
        self.fields["topic"].choices = topic_choices(
            organization=organization, keep=campaign.topic if campaign is not None else ""
        )
        searches = SavedSearch.objects.filter(organization=organization, owner=user)
        pools = pools_visible(organization=organization, user=user)
        if campaign is not None:
            del self.fields["template"]
            # What the draft already has stays a valid choice — a colleague's saved search or
            # private pool, a pool archived since — so that saving the rest does not silently
            # drop it; clean() asks to leave an archived pool out.
            searches = searches | SavedSearch.objects.filter(
                Q(campaigns=campaign) | Q(excluded_from_campaigns=campaign),
                organization=organization,
            )
            pools = pools | Pool.objects.filter(
                Q(campaigns=campaign) | Q(excluded_from_campaigns=campaign),
                organization=organization,
            )
        for name in ("saved_searches", "excluded_saved_searches"):
            self.fields[name].queryset = searches.distinct()
        for name in ("pools", "excluded_pools"):
            self.fields[name].queryset = pools.distinct()
            self.fields[name].label_from_instance = partial(pool_label, user=user)
        self.interest_fields_setup(
            organization=organization,
            chosen=campaign.interest_role_families if campaign is not None else (),
        )

    @classmethod
    def _initial_from(cls, campaign, *, organization) -> dict:
        scheduled_at = campaign.scheduled_at
        if scheduled_at is not None:  # the browser's field is a wall clock in the org's zone
            zone = ZoneInfo(organization.time_zone)
            scheduled_at = scheduled_at.astimezone(zone).replace(tzinfo=None)
        return {
            "name": campaign.name,
            "topic": campaign.topic,
            "saved_searches": list(campaign.saved_searches.all()),
            "excluded_saved_searches": list(campaign.excluded_saved_searches.all()),
            "pools": list(campaign.pools.all()),
            "excluded_pools": list(campaign.excluded_pools.all()),
            "send_when": cls.SEND_LATER if scheduled_at else cls.SEND_NOW,
            "scheduled_at": scheduled_at,
            "interest_role_families": list(campaign.interest_role_families),
            "interest_locations": ", ".join(campaign.interest_locations),
            "interest_include_unstated": campaign.interest_include_unstated,
        }

    def clean(self):
        data = super().clean()
        if data.get("send_when") == self.SEND_LATER:
            when = data.get("scheduled_at")
            if when is None:
                if "scheduled_at" not in self.errors:
                    self.add_error("scheduled_at", "Choose when to send it.")
            else:
                # The browser sends a wall-clock time: read it in the organisation's time zone.
                when = org_wall_clock_to_aware(when, time_zone=self.organization.time_zone)
                now = timezone.now()
                if when is not None and when <= now:
                    self.add_error("scheduled_at", "Choose a time in the future.")
                elif when is None or when > now + SCHEDULE_HORIZON:
                    self.add_error("scheduled_at", SCHEDULE_HORIZON_PROBLEM)
                else:
                    data["scheduled_at"] = when
        else:
            data["scheduled_at"] = None
        included = set(data.get("saved_searches") or [])
        excluded = set(data.get("excluded_saved_searches") or [])
        if included & excluded:
            self.add_error("excluded_saved_searches", "A saved search cannot be in both lists.")
        pools, excluded_pools = set(data.get("pools") or []), set(data.get("excluded_pools") or [])
        if pools & excluded_pools:
            self.add_error("excluded_pools", "A pool cannot be in both lists.")
        if "saved_searches" in data and "pools" in data and not included and not pools:
            # About the searches and the pools together: shown over both ("Who gets it").
            self.add_error(None, ValidationError(AUDIENCE_MISSING, code=AUDIENCE_MISSING_CODE))
        # An archived pool cannot bring anyone in (the launch refuses it); one that leaves
        # people out still does, so it stays.
        for pool in data.get("pools") or []:
            if pool.archived_at is not None:
                self.add_error("pools", archived_pool_problem(pool, user=self.user))
        return data

    def audience_errors(self) -> list[str]:
        """The errors about the audience as a whole, shown over its fields."""
        return [
            message
            for error in self.non_field_errors().as_data()
            if error.code == AUDIENCE_MISSING_CODE
            for message in error.messages
        ]


class PreviewCandidateForm(forms.Form):
    """Preview with a real candidate instead of the sample values."""

    candidate = forms.ModelChoiceField(
        queryset=Candidate.objects.none(), required=False, empty_label="Sample values"
    )

    LIMIT = 50

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["candidate"]
        field.queryset = candidates  # validation: anyone of these
        # …but the menu offers the first LIMIT only (an audience can be 100,000 people).
        field.choices = [
            ("", field.empty_label),
            *((c.pk, c.full_name or c.email) for c in candidates[: self.LIMIT]),
        ]


class MessageFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Message.Status.choices], required=False
    )


class PreferencesForm(forms.Form):
    PAUSE_CHOICES = [
        ("0", "Don't pause"),
        ("1", "1 month"),
        ("3", "3 months"),
        ("6", "6 months"),
        ("12", "12 months"),
    ]

    topics = forms.MultipleChoiceField(
        label="Email me about",
        choices=[],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
    )
    pause_months = forms.TypedChoiceField(
        label="Pause all emails for",
        choices=PAUSE_CHOICES,
        coerce=int,
        initial="0",
    )
    # Three answers, read at a glance: radio buttons, whose labels wrap on a phone where a
    # select cut "Whenever there is something for me" off.
    frequency = forms.ChoiceField(
        label="How often",
        choices=CandidateEmailPreference.Frequency.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        required=False,
    )
    role_families = forms.MultipleChoiceField(
        label="The kinds of role you are interested in",
        choices=[],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
    )
    interested_roles = forms.CharField(
        label="Other roles",
        max_length=400,
        required=False,
        help_text="Anything the list above misses; separate them with commas, e.g. "
        "Backend engineer, Engineering manager.",
    )
    interested_locations = forms.CharField(
        label="Where you would like to work",
        max_length=400,
        required=False,
        help_text="Cities or regions, separated with commas.",
    )
    open_to_remote = forms.BooleanField(label="I am open to remote work", required=False)
    current_title = forms.CharField(label="Your current job title", max_length=200, required=False)
    city = forms.CharField(label="Where you are based (city)", max_length=100, required=False)

    def __init__(
        self,
        *args,
        topics: list[tuple[str, str]],
        role_families: list[tuple[str, str]] = (),
        paused_until: date | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["topics"].choices = topics
        self.fields["role_families"].choices = list(role_families)
        if paused_until:
            # A paused candidate who saves a new city keeps the pause; "Resume emails now"
            # ends it (the service keeps the pause when pause_months is None).
            field = self.fields["pause_months"]
            field.choices = [
                ("", f"Keep the pause (until {date_format(paused_until, 'j F Y')})"),
                ("0", "Resume emails now"),
                *[(value, label) for value, label in field.choices if value != "0"],
            ]
            field.required = False
            field.empty_value = None
            field.initial = ""

    @classmethod
    def for_candidate(
        cls,
        data=None,
        *,
        candidate: Candidate,
        preference: CandidateEmailPreference,
        topics: list[tuple[str, str]],
        role_families: list[tuple[str, str]] = (),
    ) -> "PreferencesForm":
        """The preference centre's form: bound to what was posted, or showing what is saved.
        `topics`: the active ones; an archived topic the candidate still gets email about is
        added (services/preferences.py: archived_topics_received)."""
        topics = list(topics) + [
            (topic.key, f"{topic.name} — {topic.description}" if topic.description else topic.name)
            for topic in archived_topics_received(candidate=candidate)
        ]
        return cls(
            data,
            topics=topics,
            role_families=role_families,
            paused_until=pause_end(preference, organization=candidate.organization),
            initial={
                "topics": [k for k, _ in topics if k not in preference.opted_out_topics],
                "frequency": preference.frequency,
                "role_families": list(preference.interested_role_families or []),
                "interested_roles": ", ".join(preference.interested_roles or []),
                "interested_locations": ", ".join(preference.interested_locations or []),
                "open_to_remote": preference.open_to_remote,
                "current_title": candidate.current_title,
                "city": candidate.city,
            },
        )

    def clean_interested_roles(self):
        return comma_list(self.cleaned_data["interested_roles"], name="roles")

    def clean_interested_locations(self):
        return comma_list(self.cleaned_data["interested_locations"], name="places")


# --- settings: email sending, topics, role families; consent ------------------------------------


class SenderForm(forms.ModelForm):
    """The organisation's sender and postal address (every campaign email needs both)."""

    class Meta:
        model = Organization
        fields = ["sender_name", "sender_email", "postal_address"]
        widgets = {"postal_address": forms.Textarea(attrs={"rows": 5})}  # a full address

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sender_email"].required = True
        self.fields["postal_address"].required = True

    def clean_sender_email(self) -> str:
        address = self.cleaned_data["sender_email"]
        if address and not address.isascii():
            # Email headers take an internationalised domain only in its ASCII form, and the
            # sending domain is verified under that form too.
            raise ValidationError(
                "Use the address's ASCII form (an internationalised domain such as "
                "bücher.example is written xn--bcher-kva.example; the part before @ must be "
                "plain ASCII)."
            )
        return address

    def clean(self):
        data = super().clean()
        address = data.get("sender_email")
        if "sender_name" in data and address:
            name = data["sender_name"].strip()
            problem = address_name_problem(name=name or self.instance.name, address=address)
            if problem and not name:  # the organisation's name stands in for an empty one
                problem = (
                    "Left empty, this is your organisation's name, which is too long to go "
                    f"with the address {address} in an email. Give a shorter sender name."
                )
            if problem:
                self.add_error("sender_name", problem)
        return data


class SenderProfileForm(forms.Form):
    """How the recruiter appears in the campaign emails they send (recruiter.* merge fields).
    `email`: the recruiter's address, which their name goes with in Reply-To."""

    name = forms.CharField(label="Your name", max_length=150)
    job_title = forms.CharField(label="Your job title", max_length=150, required=False)
    signature = forms.CharField(
        label="Email signature",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Plain text, line breaks are kept. Campaign emails show it where they say "
        "{{ recruiter.signature }}.",
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_name(self):
        name = self.cleaned_data["name"]
        problem = address_name_problem(name=name.strip(), address=self.email)
        if problem:
            raise ValidationError(problem)
        return name


class BrandingForm(forms.Form):
    """The logo and colour of campaign emails and candidate pages (stored on the organisation
    by services.branding, which also re-encodes the logo)."""

    logo = forms.ImageField(
        required=False,
        help_text="PNG, JPEG, GIF or WebP, up to 2 MB. Shown at most 240×60 pixels, above every "
        "email and on your candidates' preference pages; without one, your name is shown.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)
    brand_color = forms.CharField(
        label="Brand colour",
        max_length=7,
        required=False,
        validators=[brand_color_validator],
        widget=forms.TextInput(attrs={"placeholder": "#1f5fbf", "spellcheck": "false"}),
        help_text="For links and the accent line of your emails, e.g. #1f5fbf. It must be dark "
        "enough to read on white.",
    )

    def clean_brand_color(self):
        color = self.cleaned_data["brand_color"].strip().lower()
        problem = brand_color_problem(color) if color else ""
        if problem:
            raise ValidationError(problem)
        return color


def _email_settings_field(name: str, *, max_value: int) -> forms.Field:
    """The form field Django makes for `EmailSettings.<name>`, at most `max_value`."""
    return EmailSettings._meta.get_field(name).formfield(max_value=max_value)


class EmailSettingsForm(forms.ModelForm):
    # Realistic bounds, well inside the columns (the browser's number input gets them too).
    frequency_cap_messages = _email_settings_field("frequency_cap_messages", max_value=1000)
    frequency_cap_days = _email_settings_field("frequency_cap_days", max_value=365)
    sender_daily_cap = _email_settings_field("sender_daily_cap", max_value=MAX_EMAILS_PER_DAY)

    class Meta:
        model = EmailSettings
        fields = [
            "track_opens",
            "track_clicks",
            "frequency_cap_messages",
            "frequency_cap_days",
            "consent_required",
            "sender_daily_cap",
        ]

    def clean(self):
        data = super().clean()
        if data.get("frequency_cap_messages") and not data.get("frequency_cap_days"):
            self.add_error("frequency_cap_days", "Give the number of days the cap counts over.")
        return data


class SendingDomainForm(ServiceErrorsMixin, forms.Form):
    """A sending domain's warm-up (validated again by services.domains.sending_domain_update)."""

    warmup = forms.BooleanField(
        label="Warm up this domain",
        required=False,
        help_text="Start small and send a little more every day, so mailbox providers learn to "
        "trust a new domain. Emails over the day's allowance wait for the next day.",
    )
    warmup_started_on = forms.DateField(
        label="Start on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    warmup_first_day = forms.IntegerField(
        label="Emails on the first day",
        min_value=1,
        max_value=MAX_EMAILS_PER_DAY,
        initial=50,
        help_text="Across all recruiters.",
    )
    warmup_growth_percent = forms.IntegerField(
        label="Daily increase (%)",
        min_value=10,
        max_value=1000,
        initial=100,
        help_text="100 doubles the allowance every day.",
    )
    warmup_target_per_day = forms.IntegerField(
        label="Warmed up at (emails per day)",
        min_value=2,
        max_value=MAX_EMAILS_PER_DAY,
        initial=5000,
        help_text="When the ramp reaches this many emails a day, the warm-up ends.",
    )

    def clean_warmup_started_on(self):
        day = self.cleaned_data["warmup_started_on"]
        if day is not None and day > timezone.localdate() + SCHEDULE_HORIZON:
            raise ValidationError("Choose a day within the next 12 months.")
        return day

    def clean(self):
        data = super().clean()
        if data.get("warmup") and not data.get("warmup_started_on"):
            self.add_error("warmup_started_on", "Choose the day the warm-up starts.")
        first, target = data.get("warmup_first_day"), data.get("warmup_target_per_day")
        if data.get("warmup") and first and target and target <= first:
            self.add_error(
                "warmup_target_per_day", "The target must be more than the first day's amount."
            )
        return data


class TopicForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        max_length=300,
        required=False,
        help_text="Candidates see it in their preference centre.",
    )


class RoleFamilyForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Candidates tick it in their preference centre; campaigns can target it.",
    )


class ConsentRequestForm(ServiceErrorsMixin, forms.Form):
    DEFAULT_WORDING = (
        "I agree to receive emails about job opportunities, events and news from {organization}. "
        "I can unsubscribe at any time with the link in every email."
    )

    source = forms.CharField(
        max_length=200, initial="Recruiter request", help_text="Where the consent comes from."
    )
    wording = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The exact text the candidate agrees to; it is stored with their consent.",
    )


class SuppressionAddForm(forms.Form):
    """Settings → Suppressions: addresses pasted one per line (or separated by commas or
    semicolons). The whole list is refused, and kept in the box, if any entry is not an
    address: nothing is half-added."""

    addresses = forms.CharField(
        label="Email addresses",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One per line, or separated by commas.",
    )
    note = forms.CharField(
        label="Why",
        max_length=200,
        required=False,
        help_text="Shown on the list and on the candidate's timeline.",
    )

    def __init__(self, *args, limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit

    def clean_addresses(self) -> list[str]:
        entries = [e for e in re.split(r"[\s,;]+", self.cleaned_data["addresses"]) if e]
        if len(entries) > self.limit:
            raise ValidationError(
                f"That is {len(entries):,} entries; add at most {self.limit:,} at a time."
            )
        emails, invalid = [], []
        for entry in entries:
            email = normalize_email(entry.strip("<>"))
            try:
                validate_email(email)
            except ValidationError:
                invalid.append(entry)
                continue
            if len(email) > 254:
                invalid.append(entry)
            elif email not in emails:
                emails.append(email)
        if invalid:
            shown = ", ".join(f"“{e[:80]}”" for e in invalid[:5])
            more = f" and {len(invalid) - 5:,} more" if len(invalid) > 5 else ""
            raise ValidationError(
                f"Not email addresses: {shown}{more}. Correct them (nothing was added yet)."
            )
        if not emails:
            raise ValidationError("Enter at least one email address.")
        return emails
