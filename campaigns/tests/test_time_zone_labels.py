"""Where campaign pages say which time zone a time is in (the organisation's, by name), and
the plain-text part's footer, which says why the candidate gets the email as the HTML does."""

import re

from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Campaign
from campaigns.services import messages as message_service
from campaigns.tests.test_sequences import make_sequence


def _url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def _in_los_angeles(org):
    org.time_zone = "America/Los_Angeles"
    org.save(update_fields=["time_zone"])


def test_send_later_field_names_the_organisations_time_zone(org, recruiter_client):
    _in_los_angeles(org)
    page = recruiter_client.get(_url("create", org)).content.decode()
    assert "in your organisation&#x27;s time zone, America/Los Angeles." in page
    # Needed when sending at a chosen time: not marked optional.
    label = re.search(r'<label class="form-label" for="id_scheduled_at">(.*?)</label>', page, re.S)
    assert label is not None and "(optional)" not in label.group(1)


def test_sequence_window_names_the_organisations_time_zone(org, recruiter_user, recruiter_client):
    _in_los_angeles(org)
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    settings_page = recruiter_client.get(_url("sequence_edit", org, campaign.pk)).content.decode()
    detail = recruiter_client.get(_url("detail", org, campaign.pk)).content.decode()
    assert "(else your organisation&#x27;s, America/Los Angeles)" in settings_page
    assert "in each candidate's time zone when known (else America/Los Angeles)" in detail


def test_sequence_in_the_organisations_time_zone_names_it(org, recruiter_user, recruiter_client):
    _in_los_angeles(org)
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        Campaign.objects.filter(pk=campaign.pk).update(use_candidate_time_zone=False)
    detail = recruiter_client.get(_url("detail", org, campaign.pk)).content.decode()
    assert "(America/Los Angeles)" in detail


class _Org:
    pk = 1
    name = "Acme Talent"
    postal_address = "1 Example Street"
    logo, logo_width, logo_height = "", 0, 0
    brand_color = ""


def test_plain_text_footer_says_why_the_candidate_gets_the_email():
    text = message_service.Layout(_Org()).text(
        {
            "subject": "Hi",
            "preheader": "",
            "body_html": "<p>Hi</p>",
            "body_text": "Hi\n",
            "unsubscribe_url": "https://x.example/e/u/t/",
            "preferences_url": "https://x.example/e/p/t/",
            "pixel_url": "",
            "trap_url": "",
        }
    )
    assert (
        "1 Example Street\n\n"
        "You get this email because you are in Acme Talent's talent network.\n"
        "Email preferences: https://x.example/e/p/t/\n"
        "Unsubscribe: https://x.example/e/u/t/\n"
    ) in text


def test_sent_emails_give_narrow_screens_the_time_under_the_status(
    viewer_client, recruiter_user, org, in_org
):
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due
    from campaigns.tests.factories import make_broadcast, make_candidates

    _in_los_angeles(org)
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = campaign.messages.get()
        sent = message.sent_at or message.created_at
    page = viewer_client.get(_url("messages", org, campaign.pk)).content.decode()
    when = re.search(r'<div class="[^"]*d-lg-none message-when">\s*(.*?)\s*</div>', page)
    local = sent.astimezone(org.zone)
    assert when is not None
    assert when.group(1) == f"{local.day} {local:%b %Y, %H:%M}"
