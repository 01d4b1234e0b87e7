"""The "Sent emails" card of the candidate profile."""

from django import template

from campaigns.forms import ConsentRequestForm
from campaigns.selectors import candidate_emails_panel as panel_for
from campaigns.services.consent import consent_refusal_reason

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
    # Why the double opt-in request is not offered, from what the card has already read (a
    # suppressed address is refused, with its reason, when the form is sent).
    preference = panel["preference"]
    panel["consent_refusal"] = consent_refusal_reason(
        candidate=candidate,
        unsubscribed=preference is not None and preference.unsubscribed_at is not None,
    )
    return panel
