from django import forms
from django.utils.text import slugify

from crm.models import Invitation, Membership, Organization, Role, User, slug_validator


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        # The sender and postal address of campaign email live on the Email settings tab
        # (campaigns.forms.SenderForm), where launching a campaign requires them.
        fields = ["name", "slug", "time_zone"]
        error_messages = {
            "slug": {
                "required": "Choose a URL name, such as “acme-talent”.",
                "unique": "Another organisation already uses this URL name; choose another.",
            }
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # clean_slug checks the URL name and says what is wrong in plain words.
        self.fields["slug"].validators = []
        if self.instance.pk:
            self.fields["time_zone"].help_text = (
                "Pages show times in it and “today” is its date. A change moves the steps of "
                "running sequences that wait for their sending window to the window in the new "
                "time zone; a broadcast scheduled for later keeps its moment."
            )

    def clean_slug(self):
        # One message in plain words instead of the form's and the model's own (a "slug" of
        # "letters, numbers, underscores or hyphens", which underscores the model refuses).
        slug = self.cleaned_data["slug"].strip().lower()
        if len(slug) > 50:
            raise forms.ValidationError(
                f"Keep the URL name to 50 characters or fewer (this one has {len(slug)})."
            )
        if not slug_validator.regex.fullmatch(slug):
            raise forms.ValidationError(
                "Use only lowercase letters, numbers and hyphens, such as “acme-talent”: "
                "no spaces, accents or other signs, and no hyphen at the start or the end."
            )
        if slug in {"new", "admin", "api", "static", "media"}:
            raise forms.ValidationError("This URL name is reserved; choose another.")
        return slug

    def suggested_slug(self) -> str:
        return slugify(self.data.get("name", ""))[:50]


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "role"]


class MembershipRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    role = forms.ChoiceField(choices=Role.choices)


class MemberRemoveForm(forms.Form):
    """Who takes over what a leaving member was in charge of: a recruiter or admin who stays."""

    successor = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Hand their work over to",
        empty_label=None,
    )

    def __init__(self, *args, organization: Organization, leaving: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["successor"].queryset = (
            User.objects.filter(
                memberships__organization=organization,
                memberships__role__in=[Role.ADMIN, Role.RECRUITER],
            )
            .exclude(pk=leaving.pk)
            .order_by("name", "email")
        )
        self.fields["successor"].label_from_instance = lambda user: (
            f"{user.display_name} ({user.email})" if user.name else user.email
        )
