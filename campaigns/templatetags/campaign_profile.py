"""The "Sent emails" card of the candidate profile."""

from django import template

from campaigns.forms import ConsentRequestForm
from campaigns.selectors import candidate_emails_panel as panel_for
from candidates.models import Candidate

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
    # Why the double opt-in request is not offered (what the page already knows; a suppressed
    # address is refused, with its reason, when the form is sent).
    preference = panel["preference"]
    if candidate.status == Candidate.Status.DO_NOT_CONTACT:
        panel["consent_refusal"] = "Not offered: the candidate is marked “Do not contact”."
    elif preference is not None and preference.unsubscribed_at is not None:
        panel["consent_refusal"] = "Not offered: the candidate unsubscribed."
    return panel
