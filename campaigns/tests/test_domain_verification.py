"""Sending-domain verification: an organisation proves through DNS that its sender domain is
its own before campaign email leaves from it (services/domains.py). The DNS is the fake of
campaigns/tests/fake_dns.py (the `fake_dns` fixture): no test looks a name up for real."""

from datetime import timedelta

import dns.resolver
import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Message, SendingDomain
from campaigns.services import domains, guards
from campaigns.services.campaigns import campaign_launch, campaign_launch_problems
from campaigns.services.consent import consent_request_double_opt_in
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.tests.factories import CandidateFactory

NEW_ADDRESS = "talent@careers.acme.example"
RECORD = "_rapport.careers.acme.example"


def _email_url(org):
    return reverse("campaigns:email_settings", args=[org.slug])


def _verify_url(org, domain):
    return reverse("campaigns:sending_domain_verify", args=[org.slug, domain.pk])


def _move_sender(org, address=NEW_ADDRESS) -> SendingDomain:
    """The organisation sends from `address` from now on; its domain is new, not verified."""
    org.sender_email = address
    org.save(update_fields=["sender_email"])
    with scope(organization=org):
        return domains.sending_domain_ensure(organization=org)


def _check(domain) -> SendingDomain:
    with scope(organization=domain.organization):
        return domains.sending_domain_check(domain=domain)


# --- the check ----------------------------------------------------------------------------------


def test_check_verifies_a_domain_whose_txt_record_holds_its_token(org, fake_dns):
    domain = _move_sender(org)
    fake_dns.add_txt(RECORD, "v=spf1 -all", f"rapport-verification={domain.verification_token}")

    _check(domain)

    domain.refresh_from_db()
    assert domain.verified_at is not None
    assert (domain.verification_error, domain.verification_checked_at) == ("", domain.verified_at)
    assert fake_dns.lookups == [RECORD]


def test_check_without_a_record_says_none_was_found(org, fake_dns):
    domain = _move_sender(org)

    _check(domain)

    domain.refresh_from_db()
    assert domain.verified_at is None
    assert domain.verification_error.startswith(f"No TXT record found at {RECORD}.")
    assert domain.verification_checked_at is not None


def test_check_with_another_token_says_it_does_not_match(org, fake_dns):
    domain = _move_sender(org)
    fake_dns.add_txt(RECORD, "rapport-verification=0123456789abcdef0123456789abcdef")

    _check(domain)

    domain.refresh_from_db()
    assert domain.verified_at is None
    assert domain.verification_error == (
        f"Found a TXT record at {RECORD}, but the token does not match: its value must be "
        f"rapport-verification={domain.verification_token}"
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            dns.resolver.LifetimeTimeout(timeout=5.0, errors=[]),
            f"The DNS lookup of {RECORD} timed out",
        ),
        (dns.resolver.NoNameservers(), f"No DNS server could answer for {RECORD}"),
    ],
)
def test_check_when_the_dns_does_not_answer_says_so_and_verifies_nothing(
    org, fake_dns, error, reason
):
    domain = _move_sender(org)
    fake_dns.add_txt(RECORD, f"rapport-verification={domain.verification_token}")
    fake_dns.fail(RECORD, error)

    _check(domain)

    domain.refresh_from_db()
    assert domain.verified_at is None
    assert domain.verification_error == f"{reason}: try again in a few minutes."


def test_txt_records_joins_a_long_record_given_in_pieces(fake_dns):
    value = "x" * 300  # the DNS gives it as two strings: 255 bytes, then 45
    fake_dns.add_txt(RECORD, value)

    assert domains.txt_records(RECORD) == [value]
    assert domains.txt_records("_rapport.nowhere.example") == []


def test_every_domain_gets_its_own_token(org):
    with scopes_disabled():
        first = SendingDomain.objects.create(organization=org, domain="one.example")
        second = SendingDomain.objects.create(organization=org, domain="two.example")
    assert len(first.verification_token) == 32
    assert first.verification_token != second.verification_token


# --- one organisation per domain ----------------------------------------------------------------


def test_a_domain_verified_by_another_organisation_cannot_be_verified_again(
    org, other_org, fake_dns
):
    # other_org (Globex Hiring) verified globex.example; org publishes its own token there too.
    domain = _move_sender(org, other_org.sender_email)
    fake_dns.add_txt("_rapport.globex.example", f"rapport-verification={domain.verification_token}")

    _check(domain)

    domain.refresh_from_db()
    assert domain.verified_at is None
    assert domain.verification_error.startswith(
        "Another organisation on this installation has already verified globex.example"
    )
    assert "Globex Hiring" not in domain.verification_error


def test_the_database_refuses_a_second_verified_row_for_a_domain(org, other_org):
    with scopes_disabled(), pytest.raises(IntegrityError), transaction.atomic():
        SendingDomain.objects.create(
            organization=org, domain="globex.example", verified_at=timezone.now()
        )


def test_admin_cannot_send_as_another_organisations_domain(
    org, other_org, admin_client, recruiter_user
):
    """The audit's finding: an admin sets the sender to another tenant's address. Saving it is
    allowed (the address may be theirs once they prove it), but no campaign launches from it
    and the page asks for the DNS record."""
    make_candidates(org, 2)
    response = admin_client.post(
        _email_url(org),
        {
            "sender-sender_name": "Globex Hiring",
            "sender-sender_email": other_org.sender_email,
            "sender-postal_address": "1 Example Street",
            "rules-track_opens": "on",
            "rules-track_clicks": "on",
            "rules-frequency_cap_messages": "0",
            "rules-frequency_cap_days": "0",
            "rules-sender_daily_cap": "500",
        },
    )
    page = admin_client.get(_email_url(org)).content.decode()
    campaign = make_broadcast(org, user=recruiter_user)

    assert response.status_code == 302
    assert "The domain of your sender address, globex.example, is not verified" in page
    with scope(organization=org):
        domain = SendingDomain.objects.get(organization=org, domain="globex.example")
        with pytest.raises(ValidationError) as refused:
            campaign_launch(campaign=campaign, user=recruiter_user)
    assert f"rapport-verification={domain.verification_token}" in page
    assert (
        "The domain of your sender address, globex.example, is not verified: an admin can "
        "verify it in Settings → Email." in refused.value.messages
    )
    with scopes_disabled():
        assert Message.objects.filter(organization=org).count() == 0


# --- launch and send ----------------------------------------------------------------------------


def test_launch_is_blocked_with_the_reason_while_the_sender_domain_is_not_verified(
    org, recruiter_user, fake_dns
):
    domain = _move_sender(org)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        problems = campaign_launch_problems(campaign=campaign)
    assert problems == [
        "The domain of your sender address, careers.acme.example, is not verified: an admin "
        "can verify it in Settings → Email."
    ]

    fake_dns.add_txt(RECORD, f"rapport-verification={domain.verification_token}")
    _check(domain)
    with scope(organization=org):
        assert campaign_launch_problems(campaign=campaign) == []


def test_emails_from_a_domain_not_verified_wait_until_it_is(
    org, recruiter_user, fake_dns, monkeypatch
):
    """A sender changed to an unverified domain after the launch: its emails are held in the
    queue (never dropped), checked again later, and go once the domain is verified."""
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    domain = _move_sender(org)  # after the launch, before the emails are written
    start = timezone.now()
    with scope(organization=org):
        dispatch_due()
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        held = messages_send(organization=org, message_ids=ids)
        waiting = list(Message.objects.filter(campaign=campaign))

    assert (held.sent, held.held, mail.outbox) == (0, 3, [])
    assert {m.status for m in waiting} == {Message.Status.QUEUED}
    assert {m.last_error for m in waiting} == {guards.HOLD_DOMAIN_UNVERIFIED}
    assert all(m.next_attempt_at >= start + guards.UNVERIFIED_RECHECK for m in waiting)
    assert {m.from_email for m in waiting} == {f"Sam Sender <{NEW_ADDRESS}>"}

    fake_dns.add_txt(RECORD, f"rapport-verification={domain.verification_token}")
    _check(domain)
    later = start + guards.UNVERIFIED_RECHECK + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with scope(organization=org):
        assert dispatch_due().requeued == 3
        sent = messages_send(organization=org, message_ids=ids)
    assert (sent.sent, len(mail.outbox)) == (3, 3)


@pytest.mark.parametrize("kind", ["broadcast", "sequence"])
def test_a_launched_campaign_held_by_an_unverified_domain_says_so(
    kind, org, recruiter_user, recruiter_client, admin_client, fake_dns
):
    """The campaign page must not look as if it were sending while every email waits."""
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user, kind=kind)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
    detail = reverse("campaigns:detail", args=[org.slug, campaign.pk])
    assert "Emails are waiting" not in recruiter_client.get(detail).content.decode()

    domain = _move_sender(org)
    recruiter_page = recruiter_client.get(detail).content.decode()
    admin_page = admin_client.get(detail).content.decode()

    assert "Emails are waiting." in recruiter_page
    assert "careers.acme.example, is not verified" in recruiter_page
    assert "An admin can verify it" in recruiter_page
    assert f'href="{_email_url(org)}"' in admin_page
    fake_dns.add_txt(RECORD, f"rapport-verification={domain.verification_token}")
    _check(domain)
    assert "Emails are waiting" not in recruiter_client.get(detail).content.decode()


def test_verification_turned_off_launches_and_sends_from_any_domain(
    org, recruiter_user, admin_client, settings
):
    settings.RAPPORT_SENDING_DOMAIN_VERIFICATION = False
    _move_sender(org)
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        assert campaign_launch_problems(campaign=campaign) == []
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        report = messages_send(organization=org, message_ids=ids)
    page = admin_client.get(_email_url(org)).content.decode()

    assert (report.sent, report.held) == (2, 0)
    assert "does not require verified domains" in page
    assert "is not verified" not in page


def test_transactional_email_does_not_need_a_verified_domain(
    org, django_capture_on_commit_callbacks, settings
):
    """A consent confirmation comes from the installation's DEFAULT_FROM_EMAIL."""
    _move_sender(org)
    candidate = CandidateFactory(organization=org, email="jane@example.com")
    with django_capture_on_commit_callbacks(execute=True), scope(organization=org):
        consent_request_double_opt_in(candidate=candidate, source="Fair", wording="I agree.")
    (email,) = mail.outbox
    assert (email.to, email.from_email) == (["jane@example.com"], settings.DEFAULT_FROM_EMAIL)


# --- the settings page --------------------------------------------------------------------------


def test_settings_page_shows_the_record_to_add_and_checks_it(org, admin_client, fake_dns):
    domain = _move_sender(org)

    page = admin_client.get(_email_url(org)).content.decode()
    failed = admin_client.post(_verify_url(org, domain), follow=True)
    fake_dns.add_txt(RECORD, f"rapport-verification={domain.verification_token}")
    cache.delete(f"campaigns:domain-check:{org.pk}:{domain.pk}")  # as a minute later
    verified = admin_client.post(_verify_url(org, domain), follow=True)

    assert "Not verified" in page
    assert RECORD in page and f"rapport-verification={domain.verification_token}" in page
    assert _verify_url(org, domain) in page
    assert failed.redirect_chain == [(_email_url(org) + "#sending-domains", 302)]
    assert f"No TXT record found at {RECORD}." in failed.content.decode()
    body = verified.content.decode()
    assert "careers.acme.example is verified: campaign email can leave from it." in body
    assert f"rapport-verification={domain.verification_token}" not in body
    assert "campaigns can launch" in body


def test_check_now_twice_in_a_row_looks_the_domain_up_once(org, admin_client, fake_dns):
    domain = _move_sender(org)

    admin_client.post(_verify_url(org, domain))
    second = admin_client.post(_verify_url(org, domain), follow=True)

    assert fake_dns.lookups == [RECORD]
    assert "was checked a moment ago" in second.content.decode()


def test_check_now_roles_and_tenancy(
    client, recruiter_client, viewer_client, outsider_client, admin_client, org, fake_dns
):
    domain = _move_sender(org)
    url = _verify_url(org, domain)

    assert "/accounts/login/" in client.post(url)["Location"]
    assert recruiter_client.post(url).status_code == 403
    assert viewer_client.post(url).status_code == 403
    assert viewer_client.get(_email_url(org)).status_code == 403
    assert outsider_client.post(url).status_code == 404
    assert admin_client.get(url).status_code == 405
    assert fake_dns.lookups == []


# --- the migration ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_gives_each_existing_domain_its_own_token():
    """AddField computes a callable default once for all existing rows: the data step must
    give each its own (the same token would let one organisation's record verify another's
    row for the domain)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import OrganizationFactory

    migration = ("campaigns", "0016_sending_domain_verification")
    executor = MigrationExecutor(connection)
    before = [
        key
        for key in executor.loader.get_migration(*migration).dependencies
        if key[0] == "campaigns"
    ]
    org = OrganizationFactory(sending_domain_verified=False)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldSendingDomain = old_apps.get_model("campaigns", "SendingDomain")
    for name in ("one.example", "two.example", "three.example"):
        OldSendingDomain.objects.create(organization_id=org.pk, domain=name)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    with scopes_disabled():
        tokens = list(SendingDomain.objects.values_list("verification_token", flat=True))
        verified = SendingDomain.objects.filter(verified_at__isnull=False).count()
    assert len(tokens) == len(set(tokens)) == 3
    assert verified == 0  # existing domains start unverified
