"""Candidate-facing pages: one-click unsubscribe (RFC 8058), GET never mutates, forged and
foreign tokens, the preference centre, open and click tracking, no open redirect."""

import re
from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.conf import TOKEN_MAX_AGE_DAYS
from campaigns.models import (
    CandidateEmailPreference,
    EmailSettings,
    Enrollment,
    Message,
    Suppression,
)
from campaigns.services import preferences as preference_service
from campaigns.services import tokens, tracking
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import (
    make_broadcast,
    make_candidates,
    profile_email_preferences,
)
from candidates.models import Activity, Candidate
from tests.factories import OrganizationFactory


@pytest.fixture
def sent_message(org, recruiter_user, in_org):
    """A sent campaign message to a candidate whose sequence is still active elsewhere."""
    candidate = make_candidates(org, 1)[0]
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.get(candidate=candidate)
        Message.objects.filter(pk=message.pk).update(
            status="sent", sent_at=timezone.now() - timedelta(minutes=10)
        )
        message.refresh_from_db()
    return message


def _unsubscribe_url(message):
    return re.search(
        r"<https://rapport\.example\.com(/e/u/[^>]+)>", message.headers["List-Unsubscribe"]
    )[1]


def _state(message):
    with scopes_disabled():
        preference = CandidateEmailPreference.objects.filter(
            candidate_id=message.candidate_id
        ).first()
        return (
            preference.unsubscribed_at if preference else None,
            Suppression.objects.count(),
            Activity.objects.filter(kind=Activity.Kind.UNSUBSCRIBED).count(),
        )


@pytest.fixture
def cookieless():
    return Client(enforce_csrf_checks=True)  # like a mail provider: no cookies, no CSRF token


def test_one_click_post_urlencoded_without_cookies_unsubscribes(sent_message, cookieless):
    response = cookieless.post(
        _unsubscribe_url(sent_message),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    unsubscribed_at, suppressions, timeline = _state(sent_message)
    assert response.status_code == 200
    assert unsubscribed_at is not None
    assert (suppressions, timeline) == (1, 1)
    with scopes_disabled():
        sent_message.refresh_from_db()
        assert (
            EngagementEvent.objects.filter(kind="unsubscribed", message=sent_message).count() == 1
        )
    assert sent_message.unsubscribed_at is not None


def test_one_click_post_multipart_without_cookies_unsubscribes(sent_message, cookieless):
    response = cookieless.post(_unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "Location" not in response
    assert _state(sent_message)[0] is not None


def test_one_click_post_twice_changes_nothing_the_second_time(sent_message, cookieless):
    url = _unsubscribe_url(sent_message)
    cookieless.post(url, {"List-Unsubscribe": "One-Click"})
    first = _state(sent_message)
    response = cookieless.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert _state(sent_message) == first


def test_unsubscribe_stops_active_enrollments(sent_message, cookieless, in_org):
    with in_org():
        Enrollment.objects.update(status="active")
    cookieless.post(_unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"})
    with in_org():
        enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "unsubscribed")


def test_unsubscribe_post_without_one_click_body_is_rejected(sent_message, cookieless):
    response = cookieless.post(_unsubscribe_url(sent_message), {"something": "else"})
    assert response.status_code == 400
    assert _state(sent_message) == (None, 0, 0)


@pytest.mark.parametrize("method", ["get", "head"])
def test_unsubscribe_get_and_head_never_change_state(sent_message, method):
    response = getattr(Client(), method)(_unsubscribe_url(sent_message))
    assert response.status_code == 200
    assert _state(sent_message) == (None, 0, 0)
    if method == "get":
        body = response.content.decode()
        assert "Acme Talent" in body
        assert 'name="List-Unsubscribe" value="One-Click"' in body


def test_unsubscribe_get_creates_no_preference_row(sent_message):
    Client().get(_unsubscribe_url(sent_message))
    with scopes_disabled():
        assert CandidateEmailPreference.objects.count() == 0


def test_one_click_post_skips_sessions_but_keeps_the_page_headers(sent_message, cookieless):
    response = cookieless.post(
        _unsubscribe_url(sent_message),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "user")  # answered before sessions and auth
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Length"] == str(len(response.content))


def test_one_click_post_takes_a_bounded_number_of_queries(
    sent_message, cookieless, django_assert_max_num_queries
):
    # The candidate with its organisation, the preference, the suppression, active
    # enrollments, the message, its update, the event, the timeline entry (and savepoints).
    with django_assert_max_num_queries(11):
        response = cookieless.post(
            _unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"}
        )
    assert response.status_code == 200


def test_one_click_without_cookies_then_resubscribe_from_the_page(sent_message, cookieless):
    """The confirmation page's Resubscribe form posts to a CSRF-protected view: the fast path
    still sets the CSRF cookie that goes with the form's token."""
    url = _unsubscribe_url(sent_message)
    page = cookieless.post(url, {"List-Unsubscribe": "One-Click"})
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    token = url.split("/")[3]
    response = cookieless.post(
        reverse("campaigns_public:resubscribe", args=[token]), {"csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 302
    assert _state(sent_message)[:2] == (None, 0)


def test_confirm_in_the_browser_then_resubscribe_keeps_the_csrf_cookie(sent_message):
    browser = Client(enforce_csrf_checks=True)
    url = _unsubscribe_url(sent_message)
    token = url.split("/")[3]
    browser.get(reverse("campaigns_public:preferences", args=[token]))  # sets the CSRF cookie
    cookie = browser.cookies[settings.CSRF_COOKIE_NAME].value
    page = browser.post(url, {"List-Unsubscribe": "One-Click"})
    assert browser.cookies[settings.CSRF_COOKIE_NAME].value == cookie
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = browser.post(
        reverse("campaigns_public:resubscribe", args=[token]), {"csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 302
    assert _state(sent_message)[0] is None


def test_resubscribe_without_a_csrf_token_is_refused(sent_message, cookieless):
    url = _unsubscribe_url(sent_message)
    cookieless.post(url, {"List-Unsubscribe": "One-Click"})
    response = cookieless.post(reverse("campaigns_public:resubscribe", args=[url.split("/")[3]]))
    assert response.status_code == 403
    assert _state(sent_message)[0] is not None


def test_unsubscribe_keeps_topics_and_an_earlier_suppression(sent_message, cookieless, in_org):
    with in_org():
        candidate = Candidate.objects.get(pk=sent_message.candidate_id)
        CandidateEmailPreference.objects.create(
            organization_id=candidate.organization_id,
            candidate=candidate,
            opted_out_topics=["events"],
        )
        Suppression.objects.create(
            organization_id=candidate.organization_id,
            email=candidate.email.lower(),
            reason=Suppression.Reason.BOUNCED,
        )
    response = cookieless.post(_unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with in_org():
        preference = CandidateEmailPreference.objects.get()
        reasons = list(Suppression.objects.values_list("reason", flat=True))
    assert preference.unsubscribed_at is not None
    assert preference.opted_out_topics == ["events"]
    assert reasons == [Suppression.Reason.BOUNCED]


def test_one_click_of_a_merged_profile_unsubscribes_the_surviving_one(
    sent_message, cookieless, org, in_org
):
    survivor = make_candidates(org, 1, tags=())[0]
    with in_org():
        Candidate.objects.filter(pk=sent_message.candidate_id).update(merged_into=survivor)
    response = cookieless.post(_unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "Acme Talent" in response.content.decode()
    with in_org():
        unsubscribed = list(
            CandidateEmailPreference.objects.filter(unsubscribed_at__isnull=False).values_list(
                "candidate_id", flat=True
            )
        )
        summaries = list(
            Activity.objects.filter(kind=Activity.Kind.UNSUBSCRIBED).values_list(
                "candidate_id", "summary"
            )
        )
        sent_message.refresh_from_db()
    assert unsubscribed == [survivor.pk]
    # The email stays the merged profile's, but it is the one the person unsubscribed from:
    # it is marked (the campaign's unsubscribe count) and named on the survivor's timeline.
    assert summaries == [(survivor.pk, "Unsubscribed from campaign email (Spring roles)")]
    assert sent_message.unsubscribed_at is not None


def test_one_click_records_the_campaign_on_the_timeline(sent_message, cookieless, in_org):
    cookieless.post(_unsubscribe_url(sent_message), {"List-Unsubscribe": "One-Click"})
    with in_org():
        summary = Activity.objects.get(kind=Activity.Kind.UNSUBSCRIBED).summary
        event = EngagementEvent.objects.get(kind="unsubscribed")
    assert summary == f"Unsubscribed from campaign email ({sent_message.campaign.name})"
    assert (event.campaign_id, event.message_id) == (sent_message.campaign_id, sent_message.pk)


def test_resubscribe_undoes_the_unsubscribe(sent_message, client):
    url = _unsubscribe_url(sent_message)
    client.post(url, {"List-Unsubscribe": "One-Click"})
    token = url.split("/")[3]
    response = client.post(reverse("campaigns_public:resubscribe", args=[token]))
    assert response.status_code == 302
    assert _state(sent_message)[:2] == (None, 0)


def test_resubscribe_lands_on_the_preferences_saying_so(sent_message, client):
    url = _unsubscribe_url(sent_message)
    token = url.split("/")[3]
    client.post(url, {"List-Unsubscribe": "One-Click"})
    preferences = reverse("campaigns_public:preferences", args=[token])
    # The flag alone says nothing while the candidate is still unsubscribed.
    before = client.get(preferences + "?resubscribed=1").content.decode()

    response = client.post(reverse("campaigns_public:resubscribe", args=[token]), follow=True)

    assert response.redirect_chain == [(preferences + "?resubscribed=1", 302)]
    assert "You are subscribed again." in response.content.decode()
    assert "You are subscribed again." not in before


@pytest.mark.parametrize(
    "token",
    [
        "forged.token.here",
        "1-1-1-0.abc.AAAAAAAAAAAAAAAAAAAAAA",
        "",
    ],
)
def test_forged_tokens_change_nothing_and_reveal_nothing(sent_message, cookieless, token):
    url = f"/e/u/{token}/" if token else "/e/u/x/"
    response = cookieless.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert "Acme" not in response.content.decode()
    assert _state(sent_message) == (None, 0, 0)


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/e/u/test-email/", "opens a page where they confirm they want no more campaign email"),
        ("/e/p/test-email/", "opens their own preference centre"),
    ],
)
def test_a_test_emails_links_say_what_they_would_do_and_change_nothing(
    sent_message, cookieless, path, said
):
    """ "Send a test to me" has no candidate to link to: its links do not tell the recruiter
    that the link has expired."""
    responses = [cookieless.get(path)]
    if path.startswith("/e/u/"):  # one-click, as a mail program would (no cookies, no CSRF)
        responses.append(cookieless.post(path, {"List-Unsubscribe": "One-Click"}))
    for response in responses:
        html = response.content.decode()
        assert response.status_code == 200
        assert "This link is from a test email" in html
        assert said in html
        assert "no longer works" not in html
    assert _state(sent_message) == (None, 0, 0)


def test_token_for_another_purpose_is_refused(sent_message, cookieless):
    # A valid open-pixel token (another salt) for the same candidate cannot unsubscribe.
    pixel_token = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=sent_message.organization_id,
        candidate_id=sent_message.candidate_id,
        message_id=sent_message.pk,
    )
    response = cookieless.post(f"/e/u/{pixel_token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert _state(sent_message) == (None, 0, 0)


def test_token_naming_a_candidate_of_another_org_changes_nothing(sent_message, cookieless):
    other = OrganizationFactory()
    token = tokens.candidate_token(organization_id=other.pk, candidate_id=sent_message.candidate_id)
    response = cookieless.post(f"/e/u/{token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert _state(sent_message) == (None, 0, 0)


def test_tokens_stay_valid_for_at_least_60_days(sent_message, cookieless, monkeypatch):
    url = _unsubscribe_url(sent_message)
    later = timezone.now().timestamp() + 61 * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)  # the clock
    assert cookieless.get(url).status_code == 200


def test_preferences_update_topics_pause_and_profile(sent_message, client, in_org):
    token = _unsubscribe_url(sent_message).split("/")[3]
    url = reverse("campaigns_public:preferences", args=[token])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"topics": ["events"], "pause_months": "3", "current_title": "CTO", "city": "Leeds"},
    )
    assert response.status_code == 200
    assert "Saved" in response.content.decode()
    with in_org():
        preference = CandidateEmailPreference.objects.get()
        candidate = Candidate.objects.get(pk=sent_message.candidate_id)
    assert sorted(preference.opted_out_topics) == ["jobs", "newsletter"]
    assert preference.paused_until > timezone.localdate() + timedelta(days=80)
    assert (candidate.current_title, candidate.city) == ("CTO", "Leeds")


@pytest.mark.parametrize(
    ("today", "months", "until"),
    [
        ("2026-05-30", 3, date(2026, 8, 30)),  # the same day of the month
        ("2026-05-31", 1, date(2026, 6, 30)),  # or the last day of a shorter month
        ("2027-11-29", 3, date(2028, 2, 29)),  # a leap year's February
    ],
)
def test_a_pause_of_n_months_ends_on_the_same_day_n_months_later(
    sent_message, in_org, today, months, until
):
    candidate = sent_message.candidate
    noon = datetime.fromisoformat(f"{today}T12:00:00+00:00")
    with in_org(), mock.patch("django.utils.timezone.now", return_value=noon):
        preference = preference_service.candidate_preferences_update(
            candidate=candidate, topics=["jobs"], pause_months=months, current_title="", city=""
        )

    assert preference.paused_until == until


def test_preferences_show_the_candidates_own_title_and_city(sent_message, client, in_org):
    with in_org():
        Candidate.objects.filter(pk=sent_message.candidate_id).update(
            current_title="Staff Engineer", city="Leeds", first_name="Ada"
        )
    token = _unsubscribe_url(sent_message).split("/")[3]
    found = preference_service.candidate_from_token(token)
    page = client.get(reverse("campaigns_public:preferences", args=[token])).content.decode()
    assert (found[1].first_name, found[1].current_title, found[1].city) == (
        "Ada",
        "Staff Engineer",
        "Leeds",
    )
    assert re.search(r'name="current_title"[^>]*value="Staff Engineer"', page)
    assert re.search(r'name="city"[^>]*value="Leeds"', page)


def test_preferences_frequency_and_interests_are_saved_and_shown(
    sent_message, client, in_org, recruiter_client, org
):
    token = _unsubscribe_url(sent_message).split("/")[3]
    url = reverse("campaigns_public:preferences", args=[token])
    response = client.post(
        url,
        {
            "topics": ["jobs"],
            "frequency": "weekly",
            "pause_months": "0",
            "interested_roles": "Backend engineer,  engineering   manager, Backend engineer,",
            "interested_locations": "Berlin, Lisbon",
            "open_to_remote": "on",
            "current_title": "",
            "city": "",
        },
    )
    with in_org():
        preference = CandidateEmailPreference.objects.get()
    again = client.get(url).content.decode()
    profile = recruiter_client.get(
        reverse("candidates:detail", args=[org.slug, sent_message.candidate_id])
    ).content.decode()

    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert preference.frequency == "weekly"
    assert preference.interested_roles == ["Backend engineer", "engineering manager"]
    assert (preference.interested_locations, preference.open_to_remote) == (
        ["Berlin", "Lisbon"],
        True,
    )
    assert 'value="Backend engineer, engineering manager"' in again
    assert (
        'name="frequency" value="weekly" class="form-check-input" id="id_frequency_1" checked'
        in again
    )
    panel = profile_email_preferences(profile)
    assert panel["How often"] == "At most once a week"
    assert panel["Other roles"] == "Backend engineer, engineering manager"
    assert (panel["Locations"], panel["Open to remote"]) == ("Berlin, Lisbon", "Yes")


def test_preferences_too_many_interests_rerender_with_the_error(sent_message, client, in_org):
    token = _unsubscribe_url(sent_message).split("/")[3]
    response = client.post(
        reverse("campaigns_public:preferences", args=[token]),
        {
            "topics": ["jobs"],
            "pause_months": "0",
            "interested_roles": ", ".join(f"Role {n}" for n in range(11)),
        },
    )
    with in_org():
        saved = CandidateEmailPreference.objects.filter(interested_roles__len__gt=0).exists()
    page = response.content.decode()
    assert response.status_code == 200
    assert "Name at most 10 roles." in page
    # The page reloads at its top: the summary there links to the answer to fix.
    assert "Nothing was saved. Please check:" in page
    assert '<a class="alert-link" href="#id_interested_roles">Other roles</a>' in page
    assert saved is False


def _preferences_post(client, url, **changes):
    data = {"topics": ["jobs"], "pause_months": "3", "current_title": "", "city": ""}
    return client.post(url, {**data, **changes})


def test_preferences_of_a_paused_candidate_keep_the_pause_until_resumed(
    sent_message, client, in_org
):
    token = _unsubscribe_url(sent_message).split("/")[3]
    url = reverse("campaigns_public:preferences", args=[token])
    _preferences_post(client, url)
    with in_org():
        paused_until = CandidateEmailPreference.objects.get().paused_until
    until = f"{paused_until.day} {paused_until:%B %Y}"

    page = client.get(url).content.decode()
    _preferences_post(client, url, pause_months="", city="Leeds")  # "Keep the pause"
    with in_org():
        kept = CandidateEmailPreference.objects.get().paused_until
    _preferences_post(client, url, pause_months="0")  # "Resume emails now"
    with in_org():
        resumed = CandidateEmailPreference.objects.get().paused_until

    assert f'<option value="" selected>Keep the pause (until {until})</option>' in page
    assert '<option value="0">Resume emails now</option>' in page
    assert f"Emails are paused until {until}." in page
    assert (kept, resumed) == (paused_until, None)


def test_preferences_of_a_candidate_who_is_not_paused_offer_no_pause_to_keep(sent_message, client):
    token = _unsubscribe_url(sent_message).split("/")[3]

    page = client.get(reverse("campaigns_public:preferences", args=[token])).content.decode()

    assert '<option value="0" selected>Don&#x27;t pause</option>' in page
    assert "Keep the pause" not in page and "Emails are paused" not in page


def test_preferences_get_never_changes_state(sent_message, client, in_org):
    token = _unsubscribe_url(sent_message).split("/")[3]
    for method in (client.get, client.head):
        assert method(reverse("campaigns_public:preferences", args=[token])).status_code == 200
    with in_org():
        assert Activity.objects.filter(kind=Activity.Kind.CONSENT_CHANGED).count() == 0
        # not even a row of default preferences
        assert CandidateEmailPreference.objects.count() == 0


def _pixel_url(message):
    return re.search(r'src="https://rapport\.example\.com(/e/o/[^"]+)"', message.html)[1]


def _click_url(message):
    return re.search(r'href="https://rapport\.example\.com(/e/c/[^"]+)"', message.html)[1]


HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15"


def test_open_pixel_records_a_human_open_once_on_the_timeline(sent_message, client, in_org):
    url = _pixel_url(sent_message)
    first = client.get(url, headers={"user-agent": HUMAN})
    client.get(url, headers={"user-agent": HUMAN})
    tracking.tracking_flush()
    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    with in_org():
        opens = EngagementEvent.objects.filter(kind="opened")
        assert [e.is_machine for e in opens] == [False, False]
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_OPENED).count() == 1
        sent_message.refresh_from_db()
    assert sent_message.opened_at is not None


@pytest.mark.parametrize(
    ("user_agent", "seconds_after_send", "reason"),
    [
        (HUMAN, 2, "seconds_after_send"),
        ("Mozilla/5.0 (compatible; YahooMailProxy; ...)", 600, "proxy_user_agent"),
        ("", 600, "no_user_agent"),
    ],
)
def test_machine_opens_are_flagged_not_counted(
    sent_message, client, in_org, user_agent, seconds_after_send, reason
):
    with in_org():
        Message.objects.filter(pk=sent_message.pk).update(
            sent_at=timezone.now() - timedelta(seconds=seconds_after_send)
        )
    client.get(_pixel_url(sent_message), headers={"user-agent": user_agent})
    tracking.tracking_flush()
    with in_org():
        event = EngagementEvent.objects.get(kind="opened")
        sent_message.refresh_from_db()
    assert (event.is_machine, event.machine_reason) == (True, reason)
    assert sent_message.opened_at is None


def test_open_pixel_respects_the_organisation_switch(sent_message, client, in_org, org):
    with in_org():
        EmailSettings.objects.create(organization=org, track_opens=False)
    response = client.get(_pixel_url(sent_message), headers={"user-agent": HUMAN})
    report = tracking.tracking_flush()
    assert response.status_code == 200
    assert (report.events, report.dropped) == (1, 1)
    with in_org():
        assert EngagementEvent.objects.filter(kind="opened").count() == 0


def test_open_pixel_with_forged_token_answers_the_same_gif(client, db):
    response = client.get("/e/o/forged.x.y.gif")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"


def test_click_redirects_to_the_link_the_email_contained(sent_message, client, in_org):
    response = client.get(_click_url(sent_message), headers={"user-agent": HUMAN})
    tracking.tracking_flush(hold_seconds=0)
    assert response.status_code == 302
    assert response["Location"] == "https://jobs.example.com/roles/42?ref=mail&x=1"
    with in_org():
        assert Activity.objects.filter(kind=Activity.Kind.EMAIL_CLICKED).count() == 1
        assert EngagementEvent.objects.get(kind="clicked").is_machine is False


@pytest.mark.parametrize(
    "query", ["?url=https://evil.example", "?url=//evil.example", "?next=javascript:alert(1)"]
)
def test_click_with_url_parameters_is_a_400(sent_message, client, query):
    response = client.get(_click_url(sent_message) + query)
    assert response.status_code == 400
    assert "Location" not in response


@pytest.mark.parametrize(
    "stored", ["//evil.example/x", "javascript:alert(1)", "/relative", "https:evil"]
)
def test_click_never_redirects_to_an_unsafe_stored_link(sent_message, client, in_org, stored):
    with in_org():
        Message.objects.filter(pk=sent_message.pk).update(links=[stored])
    response = client.get(_click_url(sent_message), headers={"user-agent": HUMAN})
    assert response.status_code == 400


def test_click_with_forged_or_out_of_range_link_id_is_a_400(sent_message, client):
    forged = tokens.token_make(
        salt=tokens.CLICK_SALT,
        organization_id=sent_message.organization_id,
        candidate_id=sent_message.candidate_id,
        message_id=sent_message.pk,
        link_index=7,
    )
    assert client.get(f"/e/c/{forged}/").status_code == 400
    assert client.get("/e/c/not-a-token/").status_code == 400


# --- a link that no longer works; the preference centre on a phone ---


def _page_text(response) -> str:
    body = response.content.decode()
    main = body[body.index("<main") : body.index("</main>")]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def test_expired_link_gives_the_organisations_contact_and_changes_nothing(
    sent_message, cookieless, monkeypatch, org
):
    org.sender_email = "talent@acme.example"
    org.save(update_fields=["sender_email"])
    url = _unsubscribe_url(sent_message)
    later = timezone.now().timestamp() + (TOKEN_MAX_AGE_DAYS + 1) * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)  # the clock

    response = cookieless.get(url)

    text = _page_text(response)
    assert response.status_code == 404
    assert "This link no longer works" in text
    assert "Use the link at the bottom of a more recent email from Acme Talent." in text
    assert "Or write to Acme Talent at talent@acme.example" in text
    assert '<a href="mailto:talent@acme.example">' in response.content.decode()
    assert _state(sent_message) == (None, 0, 0)


def test_forged_link_names_no_organisation(sent_message, cookieless, org):
    org.sender_email = "talent@acme.example"
    org.save(update_fields=["sender_email"])
    token = _unsubscribe_url(sent_message).split("/")[3]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    response = cookieless.get(reverse("campaigns_public:unsubscribe", args=[forged]))

    text = _page_text(response)
    assert response.status_code == 404
    assert "Use the link at the bottom of a more recent email." in text
    assert "Acme Talent" not in text and "talent@acme.example" not in text


def test_link_of_a_deleted_candidate_reads_as_an_expired_one(
    sent_message, cookieless, monkeypatch, org
):
    """Whether a person is (still) a candidate never shows: a genuine link whose candidate is
    gone gives the very page an expired link gives."""
    expired_url = _unsubscribe_url(sent_message)
    with scopes_disabled():
        other = make_candidates(org, 1)[0]
    gone_token = tokens.candidate_token(organization_id=org.pk, candidate_id=other.pk)
    with scopes_disabled():
        Candidate.objects.filter(pk=other.pk).delete()
    gone = cookieless.get(reverse("campaigns_public:preferences", args=[gone_token]))
    later = timezone.now().timestamp() + (TOKEN_MAX_AGE_DAYS + 1) * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)  # the clock

    expired = cookieless.get(expired_url)

    assert gone.status_code == expired.status_code == 404
    assert _page_text(gone) == _page_text(expired)


def test_preferences_offer_how_often_as_radio_buttons_that_wrap(sent_message, client):
    token = _unsubscribe_url(sent_message).split("/")[3]

    body = client.get(reverse("campaigns_public:preferences", args=[token])).content.decode()

    assert '<select name="frequency"' not in body
    labels = re.findall(
        r'<label class="form-check-label" for="id_frequency_\d">([^<]+)</label>', body
    )
    assert labels == [
        "Whenever there is something for me",
        "At most once a week",
        "At most once a month",
    ]
    assert 'name="frequency" value="" class="form-check-input" id="id_frequency_0" checked' in body


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("complained", "one of our emails was marked as spam"),
        ("bounced", "emails to this address could not be delivered"),
    ],
)
def test_resubscribe_after_a_complaint_or_bounce_does_not_claim_email_will_come(
    sent_message, client, reason, says
):
    """The Resubscribe button lifts the candidate's own unsubscribe, not a suppression for a
    spam complaint or a hard bounce: the page must not say "subscribed again" alone."""
    url = _unsubscribe_url(sent_message)
    token = url.split("/")[3]
    client.post(url, {"List-Unsubscribe": "One-Click"})
    with scopes_disabled():  # one row per address: the ESP's report replaces the reason
        Suppression.objects.filter(
            organization=sent_message.organization, email=sent_message.to_email.lower()
        ).update(reason=reason)
    response = client.post(reverse("campaigns_public:resubscribe", args=[token]), follow=True)
    page = " ".join(response.content.decode().split())
    assert "You are subscribed again, but we will not email you yet" in page
    assert says in page
    assert "You are subscribed again. Choose below" not in page
