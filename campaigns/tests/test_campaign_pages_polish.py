"""What a browser sweep of the campaign pages found: a launched sequence's settings say what is
fixed and why, its steps' emails can still be read, its chart names steps as the step list
does, a draft says nothing about results it does not have, the sent-emails list leads to the
email from its subject and to the candidate from their name, and the page header fits a
375px phone."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape
from django_scopes import scopes_disabled

from campaigns.models import Message, Step
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import TUESDAY_10, launched, make_sequence, went_out
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in

LAUNCHED_NOTE = "Launched: the topic, who joins at launch and the interests are fixed now"
RATES_NOTE = "Rates are over emails sent."
EMAIL_TASK_EMAIL = [{}, {"kind": Step.Kind.TASK, "delay": timedelta(days=1)}, {}]


def url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def steps_of(campaign) -> list[Step]:
    with scopes_disabled():
        return list(campaign.steps.order_by("position"))


def hrefs(body: str, css_class: str) -> list[str]:
    return re.findall(rf'<a class="[^"]*\b{css_class}\b[^"]*"\s+href="([^"]+)"', body)


# --- a launched sequence's settings ---


def test_launched_sequence_settings_say_what_is_fixed_and_why(
    recruiter_client, recruiter_user, org
):
    campaign, _ = launched(org, recruiter_user, [{}])

    response = recruiter_client.get(url("sequence_edit", org, campaign.pk))

    body = " ".join(response.content.decode().split())
    assert LAUNCHED_NOTE in body
    assert (
        "candidates were enrolled by them, and whoever enters the pool later joins by the same "
        "rules. You can still change the name, the pool candidates join from and the sending "
        "window"
    ) in body
    # The note names exactly the fields the form disables.
    form = response.context["form"]
    assert sorted(name for name, field in form.fields.items() if field.disabled) == [
        "excluded_saved_searches",
        "interest_include_unstated",
        "interest_locations",
        "interest_role_families",
        "pools",
        "saved_searches",
        "topic",
    ]


def test_draft_sequence_settings_have_no_launched_note(recruiter_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])

    body = " ".join(
        recruiter_client.get(url("sequence_edit", org, campaign.pk)).content.decode().split()
    )

    assert LAUNCHED_NOTE not in body and "sequence-launched-note" not in body


# --- a launched sequence's steps can be read ---


def test_launched_sequence_email_steps_link_to_their_read_only_page(
    recruiter_client, recruiter_user, org
):
    campaign, _ = launched(org, recruiter_user, EMAIL_TASK_EMAIL)
    first, _task, third = steps_of(campaign)

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    assert hrefs(body, "step-view") == [
        url("step_edit", org, campaign.pk, first.pk),
        url("step_edit", org, campaign.pk, third.pk),
    ]
    assert 'aria-label="View the email of step 3"' in body
    assert ">Edit</a>" not in body and ">Delete</button>" not in body


def test_viewer_gets_the_launched_steps_email_itself(viewer_client, recruiter_user, org):
    """A viewer may not open the step page (403): the link is the email's preview."""
    campaign, _ = launched(org, recruiter_user, EMAIL_TASK_EMAIL)
    first, _task, third = steps_of(campaign)

    body = viewer_client.get(url("detail", org, campaign.pk)).content.decode()
    preview = viewer_client.get(url("step_preview", org, campaign.pk, third.pk))

    assert hrefs(body, "step-view") == [
        url("step_preview", org, campaign.pk, first.pk),
        url("step_preview", org, campaign.pk, third.pk),
    ]
    assert preview.status_code == 200 and "Email 3" in preview.content.decode()


def test_draft_sequence_steps_have_edit_and_no_view_link(recruiter_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}, {}])
    first, _second = steps_of(campaign)

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    assert hrefs(body, "step-view") == []
    assert f'href="{url("step_edit", org, campaign.pk, first.pk)}">Edit</a>' in body


def test_launched_step_page_shows_the_step_read_only(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}])
    (step,) = steps_of(campaign)

    response = recruiter_client.get(url("step_edit", org, campaign.pk, step.pk))

    body = " ".join(response.content.decode().split())
    form = response.context["form"]
    assert all(field.disabled for field in form.fields.values())
    assert "<h1> Step 1 </h1>" in body and "Edit step" not in body
    assert re.search(r'<input[^>]*name="subject"[^>]*\sdisabled[\s>]', body)
    assert re.search(r'<textarea[^>]*name="body_markdown"[^>]*\sdisabled[\s>]', body)
    assert "Save step" not in body and "Send a test to me" in body
    assert f'href="{url("detail", org, campaign.pk)}"> Back </a>' in body
    assert f'src="{url("step_preview", org, campaign.pk, step.pk)}"' in body


def test_launched_step_page_post_changes_nothing(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}])
    (step,) = steps_of(campaign)
    data = {
        "kind": "email",
        "delay_amount": "0",
        "delay_unit": "days",
        "subject": "Rewritten",
        "body_markdown": "Rewritten",
    }

    response = recruiter_client.post(url("step_edit", org, campaign.pk, step.pk), data)

    assert response.status_code == 200
    assert "Steps can only be changed before the sequence is launched." in (
        response.content.decode()
    )
    step.refresh_from_db()
    assert step.subject == "Email 1"


# --- the results chart and the rates note ---


def test_sequence_chart_names_its_bars_like_the_step_list(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, EMAIL_TASK_EMAIL, candidates=2)
    with scopes_disabled():
        dispatch_due(now=TUESDAY_10)
    went_out(campaign, TUESDAY_10)

    response = recruiter_client.get(url("detail", org, campaign.pk))

    assert [d["label"] for d in response.context["results_chart"]["datasets"]] == ["Step 1"]
    assert '<span class="fw-semibold">1.</span>' in response.content.decode()


def test_sequence_rates_note_shows_only_once_an_email_was_sent(
    recruiter_client, recruiter_user, org
):
    draft = make_sequence(org, user=recruiter_user, steps=[{}], name="Draft")
    waiting, _ = launched(
        org, recruiter_user, [{"delay": timedelta(days=2)}], name="Launched, nothing sent yet"
    )
    sending, _ = launched(org, recruiter_user, [{}], name="Sent")
    with scopes_disabled():
        dispatch_due(now=TUESDAY_10)
    went_out(sending, TUESDAY_10)

    pages = {
        campaign.name: recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
        for campaign in (draft, waiting, sending)
    }

    assert {name: RATES_NOTE in body for name, body in pages.items()} == {
        "Draft": False,
        "Launched, nothing sent yet": False,
        "Sent": True,
    }


# --- the sent-emails list ---


@pytest.fixture
def sent_broadcast(org, recruiter_user, in_org):
    people = make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    return campaign, people


def test_sent_emails_link_the_subject_to_the_email_and_the_name_to_the_profile(
    recruiter_client, org, sent_broadcast
):
    campaign, people = sent_broadcast
    with scopes_disabled():
        messages = {m.candidate_id: m for m in Message.objects.filter(campaign=campaign)}

    body = recruiter_client.get(url("messages", org, campaign.pk)).content.decode()

    for person in people:
        message = messages[person.pk]
        email_url = url("message_detail", org, campaign.pk, message.pk)
        profile_url = reverse("candidates:detail", args=[org.slug, person.pk])
        name, subject = re.escape(escape(person.full_name)), re.escape(escape(message.subject))
        assert re.search(rf'<a href="{profile_url}">{name}</a>', body)
        assert re.search(rf'<a class="message-subject"\s+href="{email_url}">{subject}</a>', body)
        # Phones have no Subject column: an explicit link under the address.
        assert re.search(rf'<a class="small d-md-none message-view"\s+href="{email_url}">', body)
        assert not re.search(rf'href="{email_url}">\s*{name}', body)


def test_sent_email_without_a_candidate_has_no_profile_link(
    recruiter_client, recruiter_user, org, sent_broadcast, django_capture_on_commit_callbacks
):
    """A test with the sample values goes to the recruiter, no candidate: no profile link."""
    campaign, _people = sent_broadcast
    with django_capture_on_commit_callbacks(execute=False):
        recruiter_client.post(url("test_send", org, campaign.pk))
    with scopes_disabled():
        test = Message.objects.get(campaign=campaign, is_test=True, candidate__isnull=True)

    body = recruiter_client.get(url("messages", org, campaign.pk)).content.decode()

    email_url = url("message_detail", org, campaign.pk, test.pk)
    (row,) = [row for row in body.split("<tr>") if email_url in row]
    assert test.to_email == recruiter_user.email and test.to_email in row
    assert "/candidates/" not in row and ">Test</span>" in row


# --- the page header on a phone ---


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_running_sequence_header_fits_a_375px_phone(live_server, monkeypatch):
    """Sent emails, Settings and Pause: the buttons wrap onto a second row rather than push
    Pause past the screen's edge."""
    organization, user = browser_recruiter(
        monkeypatch, name="Header Org", slug="header-org", email="header.recruiter@example.com"
    )
    campaign, _ = launched(organization, user, [{}, {}], candidates=1)
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.set_viewport_size({"width": 375, "height": 812})
        page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/{campaign.pk}/")
        pause = page.get_by_role("button", name="Pause").bounding_box()
        width = page.evaluate("document.documentElement.clientWidth")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sequence-header-375.png"), full_page=True)

    assert problems == []
    assert overflow <= 0
    assert pause["x"] + pause["width"] <= width
