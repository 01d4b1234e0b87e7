"""The headers and footer of every kind of campaign email: a broadcast's, a sequence's first
and later step, and "Send a test to me" of a broadcast, of a sequence step and of a template
(the recruiter sees what candidates get). Each is written by the dispatcher or the test-send
view, sent by the send path and read back with the `email` module."""

import email
import email.policy
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import EmailTemplateFactory, make_broadcast, make_candidates
from campaigns.tests.test_sequences import TUESDAY_10, launched, make_sequence, went_out

TWO_STEPS = [{}, {"subject": "Email 2", "delay": timedelta(days=2)}]
# What a test email's List-Unsubscribe offers: links that act for nobody.
SAMPLE_UNSUBSCRIBE = (
    "https://rapport.example.com/e/u/test-email/",
    "mailto:unsubscribe+test@acme.example",
)


def _written(**lookup) -> Message:
    with scopes_disabled():
        return Message.objects.get(**lookup)


def _post(client, name, org, *args) -> None:
    response = client.post(reverse(f"campaigns:{name}", args=[org.slug, *args]))
    assert response.status_code == 302


def broadcast(org, user, client) -> Message:
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=user)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user)
    dispatch_due()
    return _written(campaign=campaign)


def sequence_first_step(org, user, client) -> Message:
    campaign, _ = launched(org, user, TWO_STEPS)
    dispatch_due(now=TUESDAY_10)
    return _written(campaign=campaign, step__position=1)


def sequence_later_step(org, user, client) -> Message:
    campaign, _ = launched(org, user, TWO_STEPS)
    dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)
    dispatch_due(now=TUESDAY_10 + timedelta(days=2))
    return _written(campaign=campaign, step__position=2)


def broadcast_test_send(org, user, client) -> Message:
    campaign = make_broadcast(org, user=user)
    _post(client, "test_send", org, campaign.pk)
    return _written(campaign=campaign, is_test=True)


def sequence_step_test_send(org, user, client) -> Message:
    campaign = make_sequence(org, user=user, steps=TWO_STEPS)
    with scopes_disabled():
        step = campaign.steps.get(position=2)
    _post(client, "step_test_send", org, campaign.pk, step.pk)
    return _written(step=step, is_test=True)


def template_test_send(org, user, client) -> Message:
    template = EmailTemplateFactory(organization=org)
    _post(client, "template_test_send", org, template.pk)
    return _written(campaign=None, is_test=True)


def _sent(org, message: Message) -> email.message.EmailMessage:
    """`message` through the send path, as the email module reads what left."""
    with scope(organization=org):
        report = messages_send(organization=org, message_ids=[message.pk])
    assert report.sent == 1
    (sent,) = mail.outbox
    return email.message_from_bytes(sent.message().as_bytes(), policy=email.policy.default)


@pytest.mark.parametrize(
    "write",
    [
        broadcast,
        sequence_first_step,
        sequence_later_step,
        broadcast_test_send,
        sequence_step_test_send,
        template_test_send,
    ],
)
def test_every_campaign_email_has_list_headers_and_footer(
    write, org, recruiter_user, recruiter_client, monkeypatch
):
    written = write(org, recruiter_user, recruiter_client)
    # Sent inside the sequences' window (Monday to Friday, 9:00 to 17:00), when their later
    # step is written.
    monkeypatch.setattr(timezone, "now", lambda: TUESDAY_10 + timedelta(days=2))

    parsed = _sent(org, written)

    assert parsed["Message-ID"] == written.message_id
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Long, the header is folded after its name: the email module keeps the fold's space.
    list_unsubscribe = parsed["List-Unsubscribe"].lstrip()
    unsubscribe = re.fullmatch(r"<(https://[^<>\s]+)>, <(mailto:[^<>\s]+)>", list_unsubscribe)
    assert unsubscribe is not None, list_unsubscribe
    https_url, mailto = unsubscribe.groups()
    if written.is_test:
        assert (https_url, mailto) == SAMPLE_UNSUBSCRIBE
    else:  # the candidate's own signed links
        assert https_url.startswith("https://rapport.example.com/e/u/")
        assert mailto.startswith("mailto:unsubscribe+") and mailto.endswith("@acme.example")
        assert (https_url, mailto) != SAMPLE_UNSUBSCRIBE
    assert re.fullmatch(r'"Acme Talent" <[0-9a-f]{20}\.acme\.example>', parsed["List-Id"])
    # Compared as addresses: a generated name such as "Mr. Steven Baker" is quoted on the wire.
    assert [(a.display_name, a.addr_spec) for a in parsed["Reply-To"].addresses] == [
        (recruiter_user.display_name, recruiter_user.email)
    ]
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "1 Example Street<br>London" in html and "1 Example Street\nLondon" in text
    # The footer's unsubscribe link is the header's.
    assert re.search(rf'<a href="{re.escape(https_url)}"[^>]*>Unsubscribe</a>', html)
    assert f"Unsubscribe: {https_url}\n" in text


def test_template_test_sends_share_one_list_id_per_organisation(
    org, recruiter_user, recruiter_client, outsider_client, other_org
):
    """Without a campaign, a template's test emails are one list per organisation: apart from
    every campaign's, and from another organisation's."""
    for template in EmailTemplateFactory.create_batch(2, organization=org):
        _post(recruiter_client, "template_test_send", org, template.pk)
    _post(recruiter_client, "test_send", org, make_broadcast(org, user=recruiter_user).pk)
    other_template = EmailTemplateFactory(organization=other_org)
    _post(outsider_client, "template_test_send", other_org, other_template.pk)

    with scopes_disabled():
        list_ids = [m.headers["List-Id"] for m in Message.objects.order_by("pk")]
    labels = [re.fullmatch(r'".+" <([0-9a-f]{20})\.\S+>', value).group(1) for value in list_ids]
    assert list_ids[0] == list_ids[1]  # the organisation's two templates
    assert len(set(labels)) == 3  # apart from the campaign's and the other organisation's
    assert list_ids[3].startswith('"Globex Hiring" <')
