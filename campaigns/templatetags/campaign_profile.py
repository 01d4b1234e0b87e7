"""The "Sent emails" card of the candidate profile."""

from django import template

from campaigns.forms import ConsentRequestForm
from campaigns.selectors import candidate_emails_panel as panel_for

register = template.Library()


@register.simple_tag
def candidate_emails_panel(candidate, organization):
    panel = panel_for(candidate=candidate)
    panel["consent_form"] = ConsentRequestForm(
        initial={
            "source": "Recruiter request",
            "wording": ConsentRequestForm.DEFAULT_WORDING.format(organization=organization.name),
        },
        auto_id="consent_%s",
    )
    return panel
