"""Forms of campaign sequences: the sequence's settings, a step, the resume choice.
Tenant-dependent choices get their querysets in __init__."""

from datetime import timedelta
from functools import partial

from django import forms

from campaigns.forms import BODY_HELP, InterestTargetingForm, ServiceErrorsMixin, pool_label
from campaigns.models import Campaign, Enrollment, Step
from campaigns.services.campaigns import archived_pool_problem
from campaigns.services.sequences import MAX_DELAY, WEEKDAYS, Overdue
from campaigns.services.templates import email_problems
from campaigns.services.topics import topic_choices
from candidates.models import SavedSearch
from pipelines.models import Pool
from pipelines.selectors import pools_visible

WEEKDAY_CHOICES = [(str(index), name) for index, name in enumerate(WEEKDAYS)]
CHECKBOXES = forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"})


class SequenceForm(ServiceErrorsMixin, InterestTargetingForm):
    name = forms.CharField(max_length=150, help_text="Only your team sees it.")
    topic = forms.ChoiceField(
        choices=[], help_text="Candidates who opted out of this topic are not sent to."
    )
    saved_searches = forms.ModelMultipleChoiceField(
        label="Enroll on launch",
        queryset=SavedSearch.objects.none(),
        widget=CHECKBOXES,
        required=False,
        help_text="Everyone found by any of these saved searches when you launch.",
    )
    excluded_saved_searches = forms.ModelMultipleChoiceField(
        label="Leave out",
        queryset=SavedSearch.objects.none(),
        widget=CHECKBOXES,
        required=False,
        help_text="Everyone found by any of these is left out at launch.",
    )
    pools = forms.ModelMultipleChoiceField(
        label="Enroll the talent pools' members on launch",
        queryset=None,
        widget=CHECKBOXES,
        required=False,
        help_text="Everyone in any of these pools when you launch.",
    )
    auto_join_pool = forms.ModelChoiceField(
        label="Also enroll whoever enters the pool",
        queryset=None,
        required=False,
        empty_label="No — only the saved searches and pools above, at launch",
        help_text="From launch on, candidates join the moment they are added to this pool. "
        "Those already in it join at launch only if the pool is also ticked above.",
    )
    window_days = forms.TypedMultipleChoiceField(
        label="Send on",
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=CHECKBOXES,
        help_text="A step due on another day waits for the next sending day.",
    )
    window_start = forms.TimeField(
        label="From", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    window_end = forms.TimeField(
        label="Until", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    use_candidate_time_zone = forms.BooleanField(
        label="In each candidate's time zone when known (else your organisation's)",
        required=False,
    )

    def __init__(self, *args, organization, user, campaign: Campaign | None = None, **kwargs):
        if campaign is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": campaign.name,
                "topic": campaign.topic,
                "saved_searches": list(campaign.saved_searches.all()),
                "excluded_saved_searches": list(campaign.excluded_saved_searches.all()),
                "pools": list(campaign.pools.all()),
                "auto_join_pool": campaign.auto_join_pool_id,
                "interest_role_families": list(campaign.interest_role_families),
                "interest_locations": ", ".join(campaign.interest_locations),
                "interest_include_unstated": campaign.interest_include_unstated,
                "window_days": [str(day) for day in campaign.window_days],
                "window_start": campaign.window_start,
                "window_end": campaign.window_end,
                "use_candidate_time_zone": campaign.use_candidate_time_zone,
            }
        kwargs.setdefault(
            "initial",
            {
                "window_days": ["0", "1", "2", "3", "4"],
                "window_start": "09:00",
                "window_end": "17:00",
                "use_candidate_time_zone": True,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["use_candidate_time_zone"].label = (
            "In each candidate's time zone when known (else your organisation's, "
            f"{organization.get_time_zone_display()})"
        )
        self.fields["topic"].choices = topic_choices(
            organization=organization, keep=campaign.topic if campaign is not None else ""
        )
        # A family archived after the sequence chose it stays a valid choice.
        self.interest_fields_setup(
            organization=organization,
            chosen=campaign.interest_role_families if campaign is not None else [],
        )
        searches = SavedSearch.objects.filter(organization=organization, owner=user)
        if campaign is not None:  # keep searches a colleague chose
            searches = searches | SavedSearch.objects.filter(
                organization=organization, campaigns=campaign
            )
        self.fields["saved_searches"].queryset = searches.distinct()
        self.fields["excluded_saved_searches"].queryset = searches.distinct()
        self.campaign = campaign
        self.user = user
        # The organisation's shared pools and the user's own private ones, like a broadcast.
        pools = pools_visible(organization=organization, user=user)
        if campaign is not None:
            # The pools the sequence already has stay valid choices, even a colleague's private
            # one or one archived after it was chosen, so saving the rest of the settings does
            # not silently drop them; clean() asks a draft to leave an archived one out.
            chosen = Pool.objects.filter(organization=organization, campaigns=campaign)
            if campaign.auto_join_pool_id is not None:
                chosen |= Pool.objects.filter(
                    organization=organization, pk=campaign.auto_join_pool_id
                )
            pools = (pools | chosen).distinct()
        for name in ("pools", "auto_join_pool"):
            self.fields[name].queryset = pools
            self.fields[name].label_from_instance = partial(pool_label, user=user)
        if campaign is not None and not campaign.is_editable:
            # After launch the audience has been enrolled; the rest can still change.
            for name in (
                "topic",
                "saved_searches",
                "excluded_saved_searches",
                "pools",
                "interest_role_families",
                "interest_locations",
                "interest_include_unstated",
            ):
                self.fields[name].disabled = True

    def clean(self):
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and end <= start:
            self.add_error("window_end", "Choose a time after the start of the window.")
        included = set(data.get("saved_searches") or [])
        excluded = set(data.get("excluded_saved_searches") or [])
        if included & excluded:
            self.add_error("excluded_saved_searches", "A saved search cannot be in both lists.")
        if self.campaign is None or self.campaign.is_editable:
            for name in ("pools", "auto_join_pool"):
                value = data.get(name)
                chosen = value if name == "pools" else [value] if value else []
                for pool in chosen or []:
                    if pool.archived_at is not None:
                        self.add_error(name, archived_pool_problem(pool, user=self.user))
        return data


class StepForm(ServiceErrorsMixin, forms.Form):
    HOURS, DAYS = "hours", "days"
    # What each kind of step needs: its labels say so (none of them is "optional"), and only
    # the chosen kind's fields are required when the form is checked.
    KIND_FIELDS = {Step.Kind.EMAIL: ("subject", "body_markdown"), Step.Kind.TASK: ("task_note",)}
    FIRST_STEP_CONDITION = "The first step has no previous email to look at: it always goes out."

    kind = forms.ChoiceField(
        choices=Step.Kind.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        help_text="Then fill in the part below that is for it.",
    )
    delay_amount = forms.IntegerField(label="Wait", min_value=0, max_value=365 * 24, initial=2)
    delay_unit = forms.ChoiceField(
        label="Unit", choices=[(DAYS, "days"), (HOURS, "hours")], initial=DAYS
    )
    condition = forms.ChoiceField(
        label="Send it",
        choices=Step.Condition.choices,
        required=False,
        help_text="Otherwise the candidate's sequence ends here (they engaged).",
    )
    subject = forms.CharField(
        max_length=255, error_messages={"required": "An email step needs this."}
    )
    preheader = forms.CharField(
        max_length=255, required=False, help_text="The preview line inboxes show."
    )
    body_markdown = forms.CharField(
        label="Body",
        widget=forms.Textarea(attrs={"rows": 12, "class": "font-monospace email-body-input"}),
        help_text=BODY_HELP,
        error_messages={"required": "An email step needs this."},
    )
    task_note = forms.CharField(
        label="What should the recruiter do?",
        max_length=400,
        help_text="E.g. “Call them about the platform role” or “Send a LinkedIn message”. "
        "It becomes a follow-up for the candidate's owner (else the campaign's sender).",
        error_messages={"required": "Say what the recruiter should do."},
    )

    def __init__(self, *args, organization, first_step: bool, step: Step | None = None, **kwargs):
        if step is not None and "initial" not in kwargs:
            hours = int(step.delay.total_seconds() // 3600)
            in_days = hours % 24 == 0
            kwargs["initial"] = {
                "kind": step.kind,
                "delay_amount": hours // 24 if in_days else hours,
                "delay_unit": self.DAYS if in_days else self.HOURS,
                "condition": step.condition,
                "subject": step.subject,
                "preheader": step.preheader,
                "body_markdown": step.body_markdown,
                "task_note": step.task_note,
            }
        # The first step usually goes out at once; later ones wait the field's default.
        kwargs.setdefault(
            "initial", {"kind": Step.Kind.EMAIL, **({"delay_amount": 0} if first_step else {})}
        )
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.first_step = first_step
        if first_step:
            # Every condition looks at the previous email: the first step has none.
            condition = self.fields["condition"]
            condition.choices = [(Step.Condition.ALWAYS, Step.Condition.ALWAYS.label)]
            condition.error_messages["invalid_choice"] = self.FIRST_STEP_CONDITION
            condition.help_text = self.FIRST_STEP_CONDITION

    def full_clean(self):
        # The other kind's fields are not required while the form is checked.
        chosen = self.data.get(self.add_prefix("kind"))
        relaxed = [
            name for kind, names in self.KIND_FIELDS.items() if kind != chosen for name in names
        ]
        for name in relaxed:
            self.fields[name].required = False
        try:
            super().full_clean()
        finally:
            for name in relaxed:
                self.fields[name].required = True

    def clean(self):
        data = super().clean()
        amount, unit = data.get("delay_amount"), data.get("delay_unit")
        if amount is not None and unit:
            delay = timedelta(days=amount) if unit == self.DAYS else timedelta(hours=amount)
            if delay > MAX_DELAY:
                self.add_error("delay_amount", "Wait at most a year.")
            data["delay"] = delay
        if data.get("kind") == Step.Kind.EMAIL and not self.errors:
            problems = email_problems(
                organization=self.organization,
                subject=data["subject"],
                preheader=data.get("preheader", ""),
                body_markdown=data["body_markdown"],
            )
            for name, found in problems.items():
                self.add_error(name, [str(problem) for problem in found])
        return data

    def step_fields(self) -> dict:
        data = self.cleaned_data
        is_email = data["kind"] == Step.Kind.EMAIL
        return {
            "kind": data["kind"],
            "delay": data["delay"],
            "condition": data.get("condition") or "",
            "subject": data["subject"] if is_email else "",
            "preheader": data["preheader"] if is_email else "",
            "body_markdown": data["body_markdown"] if is_email else "",
            "task_note": "" if is_email else data["task_note"],
        }


class ResumeForm(forms.Form):
    overdue = forms.ChoiceField(
        label="Steps that fell due while the campaign was paused",
        choices=Overdue.CHOICES,
        initial=Overdue.RESCHEDULE,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )


class EnrollmentFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Enrollment.Status.choices], required=False
    )
