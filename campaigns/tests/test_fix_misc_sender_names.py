"""A sender's name in From and Reply-To: RFC 2047 encoding makes a non-ASCII name 2.7 to 4
times as long, and Message.from_email and reply_to hold 320 characters. The settings refuse a
name that cannot fit (saying how many characters do); a name saved before, or an address that
changed since, is shortened in the email, never the address and never a crash."""

import email
import re
from email.header import decode_header, make_header
from email.utils import formataddr, parseaddr

from django.core import mail
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates, send_all

# 136 characters, within the form's 150: 374 once encoded with talent@acme.example.
CYRILLIC_NAME = (
    "Кадровое агентство «Северный ветер» — отдел подбора ИТ-специалистов и руководителей, "
    "Санкт-Петербург и Москва, Новосибирск, Екатеринбург"
)
ADDRESS_MAX_LENGTH = Message._meta.get_field("from_email").max_length  # and reply_to's
CHINESE_NAME = "北京人才招聘服务有限公司" * 10  # 120 characters, 4 times as long encoded


def _settings_post(**overrides):
    data = {
        "sender-sender_name": "Acme Talent",
        "sender-sender_email": "talent@acme.example",
        "sender-postal_address": "1 Example Street, London",
        "rules-track_opens": "on",
        "rules-track_clicks": "on",
        "rules-frequency_cap_messages": "0",
        "rules-frequency_cap_days": "7",
        "rules-sender_daily_cap": "0",
        "brand-brand_color": "",
    }
    data.update(overrides)
    return data


def _said_to_fit(page: str) -> int:
    return int(re.search(r"at most (\d+) characters fit", page).group(1))


def _display_name(header: str) -> str:
    name, _ = parseaddr(header)
    return str(make_header(decode_header(name)))


def test_settings_refuse_a_sender_name_too_long_once_encoded_and_say_how_many_fit(
    admin_client, org
):
    response = admin_client.post(
        reverse("campaigns:email_settings", args=[org.slug]),
        _settings_post(**{"sender-sender_name": CYRILLIC_NAME}),
    )
    page = response.content.decode()
    org.refresh_from_db()
    fits = _said_to_fit(page)
    assert response.status_code == 200
    assert "letters like these take three to four times the room" in page
    assert f"(this name has {len(CYRILLIC_NAME)})" in page
    assert org.sender_name == "Sam Sender"  # nothing saved
    # What it says is true: that many characters fit, one more does not.
    address = "talent@acme.example"
    assert len(formataddr((CYRILLIC_NAME[:fits], address))) <= ADDRESS_MAX_LENGTH
    assert len(formataddr((CYRILLIC_NAME[: fits + 1], address))) > ADDRESS_MAX_LENGTH


def test_settings_accept_a_long_latin_sender_name(admin_client, org):
    name = "Acme Talent — Engineering and Product Recruitment Team, London and Remote " * 2
    response = admin_client.post(
        reverse("campaigns:email_settings", args=[org.slug]),
        _settings_post(**{"sender-sender_name": name[:150]}),
    )
    org.refresh_from_db()
    assert response.status_code == 302
    assert org.sender_name == name[:150].strip()


def test_settings_refuse_an_empty_sender_name_when_the_organisation_name_cannot_fit(
    admin_client, org
):
    org.name = CHINESE_NAME
    org.save(update_fields=["name"])
    response = admin_client.post(
        reverse("campaigns:email_settings", args=[org.slug]),
        _settings_post(**{"sender-sender_name": ""}),
    )
    assert response.status_code == 200
    assert "Left empty, this is your organisation&#x27;s name" in response.content.decode()


def test_signature_page_refuses_a_name_too_long_for_reply_to(recruiter_client, recruiter_user, org):
    before = recruiter_user.name
    response = recruiter_client.post(
        reverse("campaigns:sender_profile", args=[org.slug]),
        {"name": CHINESE_NAME, "job_title": "", "signature": ""},
    )
    recruiter_user.refresh_from_db()
    assert response.status_code == 200
    assert f"(this name has {len(CHINESE_NAME)})" in response.content.decode()
    assert recruiter_user.name == before


def test_test_send_and_dispatch_shorten_a_name_saved_before_and_keep_the_address(
    recruiter_client, recruiter_user, org, django_capture_on_commit_callbacks
):
    org.sender_name = CYRILLIC_NAME  # saved before the settings checked it
    org.save(update_fields=["sender_name"])
    recruiter_user.name = CHINESE_NAME
    recruiter_user.save(update_fields=["name"])
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with django_capture_on_commit_callbacks(execute=False):
        test_send = recruiter_client.post(
            reverse("campaigns:test_send", args=[org.slug, campaign.pk])
        )
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        messages = list(Message.objects.filter(campaign=campaign).order_by("is_test", "pk"))
    send_all(org, campaign)
    assert test_send.status_code == 302
    assert [m.is_test for m in messages] == [False, False, True]
    for message in messages:
        assert len(message.from_email) <= ADDRESS_MAX_LENGTH
        assert len(message.reply_to) <= ADDRESS_MAX_LENGTH
        assert parseaddr(message.from_email)[1] == "talent@acme.example"
        assert parseaddr(message.reply_to)[1] == recruiter_user.email
        from_name, reply_name = _display_name(message.from_email), _display_name(message.reply_to)
        assert from_name.endswith("…") and CYRILLIC_NAME.startswith(from_name[:-1])
        assert reply_name.endswith("…") and CHINESE_NAME.startswith(reply_name[:-1])
    sent = [email.message_from_bytes(m.message().as_bytes()) for m in mail.outbox]
    assert len(sent) == 3
    assert {parseaddr(m["From"])[1] for m in sent} == {"talent@acme.example"}


def test_address_header_shortens_only_what_does_not_fit():
    from campaigns.services.messages import address_header

    address = "someone@example.com"
    assert address_header("Ada Lovelace", address) == "Ada Lovelace <someone@example.com>"
    assert address_header("", address) == address
    long_latin = address_header("x" * 400, address)
    assert len(long_latin) == ADDRESS_MAX_LENGTH
    assert long_latin.endswith('xxx..." <someone@example.com>')
    emoji = address_header("🎉" * 150, address)
    assert len(emoji) <= ADDRESS_MAX_LENGTH
    assert _display_name(emoji).endswith("🎉…")


def test_settings_refuse_a_sender_address_with_an_internationalised_domain(admin_client, org):
    response = admin_client.post(
        reverse("campaigns:email_settings", args=[org.slug]),
        _settings_post(**{"sender-sender_email": "talent@bücher.example"}),
    )
    org.refresh_from_db()
    assert response.status_code == 200
    assert "xn--bcher-kva.example" in response.content.decode()
    assert org.sender_email != "talent@bücher.example"


def test_address_header_writes_an_internationalised_domain_in_ascii():
    from campaigns.services.messages import address_header

    assert address_header("Ana", "ana@bücher.example") == "Ana <ana@xn--bcher-kva.example>"
    assert address_header("Ana", "ana@example.com") == "Ana <ana@example.com>"
