from django import forms
from django.utils.text import slugify

from crm.models import Invitation, Membership, Organization, Role


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        # The sender and postal address of campaign email live on the Email settings tab
        # (campaigns.forms.SenderForm), where launching a campaign requires them.
        fields = ["name", "slug", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["time_zone"].help_text = (
                "Pages show times in it and “today” is its date. A change moves the steps of "
                "running sequences that wait for their sending window to the window in the new "
                "time zone; a broadcast scheduled for later keeps its moment."
            )

    def clean_slug(self):
        slug = self.cleaned_data["slug"].lower()
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
