"""Campaign and template pages: happy paths, roles, query counts, the development outbox."""

import re

import pytest
from anymail.inbound import AnymailInboundMessage
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Campaign, EmailTemplate, Enrollment, Message, Topic
from campaigns.services.campaigns import campaign_launch, step_update
from campaigns.services.dispatch import dispatch_due
from campaigns.services.replies import inbound_email_record
from campaigns.tests.factories import (
    EmailTemplateFactory,
    SavedSearchFactory,
    make_broadcast,
    make_candidates,
)
from candidates.tests.factories import CustomFieldFactory
from crm.tests.markup import applies_with_show_button


def url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def test_campaign_list_empty_state(recruiter_client, org):
    response = recruiter_client.get(url("list", org))
    assert response.status_code == 200
    assert "No campaigns yet" in response.content.decode()


def test_campaign_list_anonymous_is_sent_to_login(client, org):
    response = client.get(url("list", org))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_campaign_list_other_org_is_404(outsider_client, org):
    assert outsider_client.get(url("list", org)).status_code == 404


def test_campaign_list_names_the_topic_before_the_organisation_has_topic_rows(
    recruiter_client, recruiter_user, org
):
    # Default topics are created on first use; until then a campaign shows the default label.
    make_broadcast(org, user=recruiter_user, name="Spring roles")
    with scopes_disabled():
        Campaign.objects.filter(organization=org).update(topic="newsletter")
        Topic.objects.filter(organization=org).delete()
    body = recruiter_client.get(url("list", org)).content.decode()
    assert "Broadcast · Newsletter" in body and "· newsletter" not in body
    with scopes_disabled():
        campaign = Campaign.objects.get(organization=org)
    detail = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert " ".join(detail.split()).count("Broadcast · Newsletter") == 1


def test_campaign_list_gives_phones_the_counts_under_the_name(
    recruiter_client, recruiter_user, org, in_org
):
    """Phones hide the count columns (`d-none d-sm-table-cell`); a line under the name has them."""
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user, name="Spring roles")
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        enrolled = Enrollment.objects.filter(campaign=campaign).count()
    body = recruiter_client.get(url("list", org)).content.decode()
    start = body.index('<div class="small text-body-secondary d-sm-none">')
    line = " ".join(body[body.index(">", start) + 1 : body.index("</div>", start)].split())
    assert enrolled >= 2 and line == f"{enrolled} candidates · 0 sent"
    assert body.count('class="text-end d-none d-sm-table-cell"') == 4  # 2 headers, 2 cells


@pytest.mark.parametrize("count", [1, 3])
def test_campaign_list_query_count_does_not_grow(recruiter_client, recruiter_user, org, count):
    for index in range(count):
        make_broadcast(org, user=recruiter_user, name=f"Campaign {index}")
    with CaptureQueriesContext(connection) as queries:
        response = recruiter_client.get(url("list", org))
    assert response.status_code == 200
    assert response.content.decode().count("campaign-status-draft") == count
    # Session user, the memberships (this one and the navbar's), the campaigns' count (for
    # the pages) and one page of campaigns.
    assert len(queries) == 4, [q["sql"] for q in queries]


def test_campaign_create_makes_a_draft_broadcast(recruiter_client, recruiter_user, org, in_org):
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    response = recruiter_client.post(
        url("create", org),
        {
            "name": "Spring roles",
            "template": template.pk,
            "topic": "jobs",
            "saved_searches": [search.pk],
            "send_when": "now",
        },
    )
    with in_org():
        campaign = Campaign.objects.get()
        step = campaign.steps.get()
    assert response.status_code == 302
    assert response["Location"] == url("detail", org, campaign.pk)
    assert (campaign.status, campaign.kind, campaign.sender) == (
        "draft",
        "broadcast",
        recruiter_user,
    )
    assert step.body_markdown == template.body_markdown


def test_campaign_create_later_needs_a_future_time(recruiter_client, recruiter_user, org):
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    response = recruiter_client.post(
        url("create", org),
        {
            "name": "Later",
            "template": template.pk,
            "topic": "jobs",
            "saved_searches": [search.pk],
            "send_when": "later",
            "scheduled_at": "2001-01-01T09:00",
        },
    )
    assert response.status_code == 200
    assert "Choose a time in the future." in response.content.decode()


def test_campaign_create_does_not_offer_another_orgs_template(
    recruiter_client, recruiter_user, org, other_org
):
    foreign = EmailTemplateFactory(organization=other_org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    response = recruiter_client.post(
        url("create", org),
        {
            "name": "x",
            "template": foreign.pk,
            "topic": "jobs",
            "saved_searches": [search.pk],
            "send_when": "now",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_viewer_cannot_create_or_launch(viewer_client, recruiter_user, org):
    campaign = make_broadcast(org, user=recruiter_user)
    assert viewer_client.get(url("create", org)).status_code == 403
    assert viewer_client.post(url("launch", org, campaign.pk)).status_code == 403
    assert viewer_client.post(url("test_send", org, campaign.pk)).status_code == 403
    assert viewer_client.post(url("email_edit", org, campaign.pk), {}).status_code == 403
    assert viewer_client.get(url("detail", org, campaign.pk)).status_code == 200


def test_campaign_detail_shows_audience_size_before_launch(recruiter_client, recruiter_user, org):
    make_candidates(org, 4)
    campaign = make_broadcast(org, user=recruiter_user)
    response = recruiter_client.get(url("detail", org, campaign.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert '<span class="stat-value">4</span>' in body
    assert "Launch now" in body


def test_campaign_pages_say_whose_saved_search_a_colleagues_is(
    recruiter_client, admin_client, recruiter_user, admin_user, org, in_org
):
    recruiter_user.name = "Rita Recruiter"
    recruiter_user.save(update_fields=["name"])
    broadcast = make_broadcast(org, user=recruiter_user)
    with in_org():
        broadcast.saved_searches.update(name="Berlin backend")
    sequence = make_broadcast(org, user=admin_user, kind=Campaign.Kind.SEQUENCE, name="Nurture")
    with in_org():
        sequence.saved_searches.update(name="Admin picks")

    def audience(client, campaign) -> str:
        """The page's text, tags taken out."""
        page = client.get(url("detail", org, campaign.pk)).content.decode()
        return " ".join(re.sub(r"<[^>]+>", " ", page).split())

    assert "Berlin backend (Rita Recruiter’s)" in audience(admin_client, broadcast)
    own = audience(recruiter_client, broadcast)
    assert "Saved search: Berlin backend" in own and "’s)" not in own
    assert f"Admin picks ({admin_user.display_name}’s)" in audience(recruiter_client, sequence)
    assert "’s)" not in audience(admin_client, sequence)


def test_campaign_detail_does_not_name_a_colleagues_private_pool(
    recruiter_client, viewer_client, admin_client, recruiter_user, org, in_org
):
    from pipelines.models import Pool
    from pipelines.services import pool_archive
    from pipelines.tests.factories import PoolFactory

    private = PoolFactory(
        organization=org,
        name="Poaching list Zanzibar",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    left_out = PoolFactory(
        organization=org,
        name="Do not touch Kilimanjaro",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    shared = PoolFactory(organization=org, name="Backend engineers", owner=recruiter_user)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign.pools.set([private, shared])
        campaign.excluded_pools.set([left_out])
        pool_archive(pool=private)  # a launch problem that would name it

    own = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    for client in (viewer_client, admin_client):
        page = client.get(url("detail", org, campaign.pk)).content.decode()
        assert "Zanzibar" not in page and "Kilimanjaro" not in page
        assert page.count("A private pool") == 2
        assert "Backend engineers" in page
        assert "A colleague&#x27;s private talent pool has been archived" in page
    assert "Poaching list Zanzibar (archived)" in own and "Do not touch Kilimanjaro" in own
    assert "The talent pool “Poaching list Zanzibar” has been archived" in own


def test_launching_does_not_name_a_colleagues_archived_private_pool(
    admin_client, admin_user, recruiter_user, org, in_org
):
    from pipelines.models import Pool
    from pipelines.services import pool_archive
    from pipelines.tests.factories import PoolFactory

    private = PoolFactory(
        organization=org,
        name="Poaching list Zanzibar",
        owner=recruiter_user,
        visibility=Pool.Visibility.OWNER,
    )
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign.pools.set([private])
        pool_archive(pool=private)

    response = admin_client.post(url("launch", org, campaign.pk), follow=True)
    with in_org(), pytest.raises(ValidationError) as refused:
        campaign_launch(campaign=campaign, user=admin_user)

    page = response.content.decode()
    assert "Zanzibar" not in page and "Zanzibar" not in " ".join(refused.value.messages)
    assert "A colleague&#x27;s private talent pool has been archived" in page
    assert "A colleague's private talent pool has been archived: leave it out, or ask its " in (
        " ".join(refused.value.messages)
    )


def test_campaign_detail_blocks_launch_without_postal_address(
    recruiter_client, recruiter_user, org
):
    org.postal_address = ""
    org.save()
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert "Not ready to launch" in body and "What it still needs:" in body
    assert "Ready to launch<" not in body
    assert "no postal address" in body
    response = recruiter_client.post(url("launch", org, campaign.pk), follow=True)
    assert "no postal address" in response.content.decode()
    with scopes_disabled():
        assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_campaign_launch_enrolls_and_queues_the_dispatcher(
    recruiter_client, recruiter_user, org, django_capture_on_commit_callbacks
):
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = recruiter_client.post(url("launch", org, campaign.pk))
    assert response.status_code == 302
    assert len(callbacks) == 1  # the dispatcher, after commit
    with scopes_disabled():
        campaign.refresh_from_db()
        assert campaign.enrollments.count() == 2
    assert campaign.status == "running"


def _dispatched_broadcast(org, user, in_org, *, candidates: int):
    """A broadcast to `candidates` candidates, launched and dispatched: its messages queued."""
    make_candidates(org, candidates)
    campaign = make_broadcast(org, user=user)
    with in_org():
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    return campaign


def test_campaign_detail_after_sending_shows_step_results(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = _dispatched_broadcast(org, recruiter_user, in_org, candidates=2)
    with in_org():
        Message.objects.update(status="sent")
        Message.objects.filter(pk=Message.objects.first().pk).update(opened_at="2030-01-01T00:00Z")
    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert "Results" in body and "50.0%" in body


def test_campaign_detail_draws_the_results_as_a_chart_once_emails_went_out(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = _dispatched_broadcast(org, recruiter_user, in_org, candidates=2)
    queued = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    with in_org():
        Message.objects.update(status="delivered")
        Message.objects.filter(pk=Message.objects.first().pk).update(opened_at="2030-01-01T00:00Z")
    response = recruiter_client.get(url("detail", org, campaign.pk))
    body = response.content.decode()
    assert "results-chart-data" not in queued  # nothing sent yet: no chart
    assert response.context["results_chart"] == {
        "labels": [
            "Sent",
            "Delivered",
            "Opened",
            "Clicked",
            "Replied",
            "Unsubscribed",
            "Bounced",
        ],
        "datasets": [{"label": "Emails", "data": [2, 2, 1, 0, 0, 0, 0]}],
    }
    assert '<script id="results-chart-data" type="application/json">' in body
    assert "chart.umd.min.js" in body and "step-stats" in body  # the table stays


def test_campaign_detail_results_count_replies_but_not_auto_replies(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = _dispatched_broadcast(org, recruiter_user, in_org, candidates=4)
    with in_org():
        Message.objects.update(status="delivered", sent_at="2030-01-01T00:00Z")
        first, second = Message.objects.order_by("pk")[:2]
    for message, extra in ((first, {}), (second, {"Auto-Submitted": "auto-replied"})):
        raw = "\r\n".join(
            [
                "From: someone@example.com",
                f"Subject: Re: {message.subject}",
                f"Message-ID: <answer-{message.pk}@example.com>",
                f"In-Reply-To: {message.message_id}",
                *(f"{name}: {value}" for name, value in extra.items()),
            ]
        )
        inbound_email_record(message=AnymailInboundMessage.parse_raw_mime(raw + "\r\n\r\nHello"))

    response = recruiter_client.get(url("detail", org, campaign.pk))
    row = response.context["stats"][0]
    assert {k: row[k] for k in ("sent", "delivered", "replied", "reply_rate", "delivery_rate")} == {
        "sent": 4,
        "delivered": 4,
        "replied": 1,
        "reply_rate": 25.0,
        "delivery_rate": 100.0,
    }
    assert "Replied" in response.content.decode()


def test_a_bounced_email_counts_as_sent_on_the_list_the_results_and_the_progress(
    recruiter_client, launched_broadcast, org, in_org
):
    """A bounce went out: the "Sent" figures agree with the rates' denominator everywhere."""
    campaign, _ = launched_broadcast
    with in_org():
        Message.objects.update(status="sent", sent_at="2030-01-01T00:00Z")
        Message.objects.filter(pk=Message.objects.order_by("pk").first().pk).update(
            status="bounced"
        )
    detail = recruiter_client.get(url("detail", org, campaign.pk))
    listed = recruiter_client.get(url("list", org))
    row = detail.context["stats"][0]
    assert {k: row[k] for k in ("sent", "bounced", "bounce_rate")} == {
        "sent": 3,
        "bounced": 1,
        "bounce_rate": 33.3,
    }
    assert detail.context["delivery"]["sent"] == 3
    assert [c.sent_count for c in listed.context["campaigns"]] == [3]


def test_campaign_preview_renders_the_email_in_its_own_policy(viewer_client, recruiter_user, org):
    campaign = make_broadcast(org, user=recruiter_user)
    response = viewer_client.get(url("preview", org, campaign.pk))
    assert response.status_code == 200
    assert "Hi Ada" in response.content.decode()  # the sample first name
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_campaign_preview_with_a_real_candidate(viewer_client, recruiter_user, org):
    candidate = make_candidates(org, 1, first_name="Grace")[0]
    campaign = make_broadcast(org, user=recruiter_user)
    response = viewer_client.get(url("preview", org, campaign.pk) + f"?candidate={candidate.pk}")
    assert "Hi Grace" in response.content.decode()
    detail = viewer_client.get(url("detail", org, campaign.pk) + f"?candidate={candidate.pk}")
    assert applies_with_show_button(detail.content.decode(), "id_candidate")


def test_campaign_test_send_goes_to_me_through_the_outbox(
    recruiter_client, recruiter_user, org, in_org, django_capture_on_commit_callbacks
):
    campaign = make_broadcast(org, user=recruiter_user)
    with django_capture_on_commit_callbacks(execute=False):
        response = recruiter_client.post(url("test_send", org, campaign.pk))
    assert response.status_code == 302
    with in_org():
        message = Message.objects.get()
    assert (message.is_test, message.to_email) == (True, recruiter_user.email)
    assert message.subject.startswith("[Test] ")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"A test email is on its way to {recruiter_user.email}."
    ]


def test_campaign_email_edit_shows_template_errors_at_their_line(
    recruiter_client, recruiter_user, org
):
    campaign = make_broadcast(org, user=recruiter_user)
    response = recruiter_client.post(
        url("email_edit", org, campaign.pk),
        {"subject": "Hi", "preheader": "", "body_markdown": "Hello\n\n{{ settings.SECRET_KEY }}"},
    )
    assert response.status_code == 200
    assert "Line 3: Unknown merge field “settings”." in response.content.decode()


def test_campaign_email_edit_saves_a_draft(recruiter_client, recruiter_user, org, in_org):
    campaign = make_broadcast(org, user=recruiter_user)
    response = recruiter_client.post(
        url("email_edit", org, campaign.pk),
        {"subject": "New subject", "preheader": "", "body_markdown": "Hi {{ first_name }}"},
    )
    assert response.status_code == 302
    with in_org():
        assert campaign.steps.get().subject == "New subject"


def test_sent_emails_view_lists_the_outbox(viewer_client, recruiter_user, org, in_org):
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.first()
    response = viewer_client.get(url("messages", org, campaign.pk))
    assert response.status_code == 200
    assert response.content.decode().count("message-status-queued") == 3
    assert applies_with_show_button(response.content.decode(), "id_status")
    detail = viewer_client.get(url("message_detail", org, campaign.pk, message.pk))
    assert "List-Unsubscribe" in detail.content.decode()
    html = viewer_client.get(url("message_html", org, campaign.pk, message.pk)).content.decode()
    # Looking at it must not count as an open or a click, nor lead into the candidate's pages.
    assert "/e/o/" in message.html and "/e/c/" in message.html
    assert "/e/o/" not in html and "/e/c/" not in html and "/e/u/" not in html
    assert "Hi " in html


def test_sent_emails_filtered_to_nothing_says_so_not_that_nothing_was_sent(
    viewer_client, recruiter_user, org, in_org
):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    emails = url("messages", org, campaign.pk)

    page = viewer_client.get(emails, {"status": "failed"}).content.decode()

    assert "No emails with this status" in page and "No emails yet" not in page
    assert f'href="{emails}">Show every email</a>' in page


@pytest.mark.parametrize("count", [1, 3])
def test_sent_emails_query_count_does_not_grow(viewer_client, recruiter_user, org, in_org, count):
    make_candidates(org, count)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    with CaptureQueriesContext(connection) as queries:
        viewer_client.get(url("messages", org, campaign.pk))
    assert len(queries) == 5, [q["sql"] for q in queries]


def test_template_list_and_create(recruiter_client, org, in_org):
    assert (
        "No email templates yet" in recruiter_client.get(url("template_list", org)).content.decode()
    )
    response = recruiter_client.post(
        url("template_create", org),
        {
            "name": "Check-in",
            "subject": "Hi {{ first_name }}",
            "preheader": "",
            "body_markdown": "Hello {{ first_name|default('there') }}",
        },
    )
    with in_org():
        template = EmailTemplate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("template_edit", org, template.pk)


def test_template_editor_lists_custom_fields_with_their_label_and_a_sample(recruiter_client, org):
    CustomFieldFactory(
        organization=org,
        key="work_mode",
        label="Work mode",
        field_type="choice",
        choices=["Hybrid", "Remote"],
    )
    CustomFieldFactory(organization=org, key="old_field", label="Old", archived=True)
    body = recruiter_client.get(url("template_create", org)).content.decode()
    assert "custom.work_mode" in body and "Work mode (choice custom field)" in body
    assert "e.g. Hybrid" in body and "custom.old_field" not in body


def test_template_create_shows_errors_at_their_line(recruiter_client, org):
    response = recruiter_client.post(
        url("template_create", org),
        {
            "name": "Bad",
            "subject": "Hi",
            "preheader": "",
            "body_markdown": "One\nTwo\n{% include 'base.html' %}",
        },
    )
    assert response.status_code == 200
    assert "Line 3: {% include %} is not allowed" in response.content.decode()


@pytest.mark.parametrize("count", [1, 3])
def test_template_list_query_count_does_not_grow(viewer_client, org, count):
    for _ in range(count):
        EmailTemplateFactory(organization=org)
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(url("template_list", org))
    assert response.status_code == 200
    assert len(queries) == 3, [q["sql"] for q in queries]


def test_template_edit_viewer_reads_but_cannot_save(viewer_client, org):
    template = EmailTemplateFactory(organization=org)
    assert viewer_client.get(url("template_edit", org, template.pk)).status_code == 200
    response = viewer_client.post(
        url("template_edit", org, template.pk),
        {"name": "x", "subject": "x", "preheader": "", "body_markdown": "x"},
    )
    assert response.status_code == 403


def test_template_preview_of_unsaved_text(recruiter_client, org):
    template = EmailTemplateFactory(organization=org)
    response = recruiter_client.post(
        url("template_preview", org, template.pk),
        {"subject": "s", "preheader": "", "body_markdown": "Unsaved **{{ first_name }}**"},
    )
    assert "Unsaved <strong>Ada</strong>" in response.content.decode()
    broken = recruiter_client.post(
        url("template_preview", org, template.pk),
        {"subject": "s", "preheader": "", "body_markdown": "{{ nope }}"},
    )
    assert "Unknown merge field" in broken.content.decode()


def test_template_test_send(recruiter_client, org, in_org, django_capture_on_commit_callbacks):
    template = EmailTemplateFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        response = recruiter_client.post(url("template_test_send", org, template.pk))
    assert response.status_code == 302
    with in_org():
        assert Message.objects.get().is_test is True


def test_results_chart_has_a_bar_group_per_email_step_that_sent_and_none_for_tasks():
    from campaigns.models import Step
    from campaigns.selectors import RESULTS_CHART_MEASURES, campaign_results_chart

    def row(position, kind="email", sent=0):
        counts = dict.fromkeys((key for key, _ in RESULTS_CHART_MEASURES), 0)
        return {**counts, "step": Step(position=position, kind=kind), "sent": sent}

    results = [row(1, sent=10), row(2, kind="task"), row(3, sent=4), row(4)]
    chart = campaign_results_chart(results=results)
    # Named like the step list numbers them: the task is step 2.
    assert [d["label"] for d in chart["datasets"]] == ["Step 1", "Step 3"]
    assert [d["data"][0] for d in chart["datasets"]] == [10, 4]
    assert campaign_results_chart(results=[row(1), row(2, kind="task")]) is None


# --- audit: far-future schedules, merge fields at save, the broadcast page's wording ---------


def _broadcast_post(template, search, **fields):
    return {
        "name": "Later",
        "template": template.pk,
        "topic": "jobs",
        "saved_searches": [search.pk],
        "send_when": "later",
        **fields,
    }


@pytest.mark.parametrize(
    "scheduled_at",
    [
        "9999-12-31T23:59",  # year 10000 in UTC: psycopg could not read it back
        "9999-12-31T15:00",
        "2100-01-01T09:00",
    ],
)
def test_campaign_create_later_refuses_a_time_more_than_a_year_ahead(
    recruiter_client, recruiter_user, org, in_org, scheduled_at
):
    org.time_zone = "America/Los_Angeles"
    org.save(update_fields=["time_zone"])
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)

    response = recruiter_client.post(
        url("create", org), _broadcast_post(template, search, scheduled_at=scheduled_at)
    )

    assert response.status_code == 200
    assert "Choose a time within the next 12 months." in response.content.decode()
    with in_org():
        assert not Campaign.objects.exists()
    assert recruiter_client.get(url("list", org)).status_code == 200


def test_campaign_create_later_keeps_a_time_within_the_year_in_the_org_zone(
    recruiter_client, recruiter_user, org, in_org
):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    org.time_zone = "America/Los_Angeles"
    org.save(update_fields=["time_zone"])
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    wall_clock = (timezone.now() + timedelta(days=300)).astimezone(ZoneInfo(org.time_zone))
    typed = wall_clock.strftime("%Y-%m-%dT%H:%M")

    response = recruiter_client.post(
        url("create", org), _broadcast_post(template, search, scheduled_at=typed)
    )

    assert response.status_code == 302
    with in_org():
        campaign = Campaign.objects.get()
    local = campaign.scheduled_at.astimezone(ZoneInfo(org.time_zone))
    assert local.strftime("%Y-%m-%dT%H:%M") == typed


@pytest.mark.parametrize("part", ["subject", "preheader", "body_markdown"])
def test_template_save_rejects_an_unknown_merge_field_with_its_line(
    recruiter_client, org, in_org, part
):
    data = {"name": "Check-in", "subject": "Hello", "preheader": "", "body_markdown": "Hi"}
    data[part] = "{{ unknown_field }}"
    template = EmailTemplateFactory(organization=org)

    created = recruiter_client.post(url("template_create", org), data)
    edited = recruiter_client.post(url("template_edit", org, template.pk), data)

    for response in (created, edited):
        assert response.status_code == 200
        assert "Line 1: Unknown merge field “unknown_field”." in response.content.decode()
    with in_org():
        assert list(EmailTemplate.objects.values_list("pk", flat=True)) == [template.pk]
        assert EmailTemplate.objects.get().name != "Check-in"


@pytest.mark.parametrize("part", ["subject", "preheader", "body_markdown"])
def test_campaign_email_save_rejects_an_unknown_merge_field_with_its_line(
    recruiter_client, recruiter_user, org, in_org, part
):
    campaign = make_broadcast(org, user=recruiter_user)
    data = {"subject": "Hello", "preheader": "", "body_markdown": "Hi"}
    data[part] = "Hi\n{{ unknown_field }}" if part == "body_markdown" else "{{ unknown_field }}"

    response = recruiter_client.post(url("email_edit", org, campaign.pk), data)

    line = 2 if part == "body_markdown" else 1
    assert response.status_code == 200
    assert f"Line {line}: Unknown merge field “unknown_field”." in response.content.decode()
    with in_org():
        step = campaign.steps.get()
    assert "unknown_field" not in step.subject + step.preheader + step.body_markdown


def test_step_update_of_a_campaign_launched_after_it_was_loaded_is_refused(org, recruiter_user):
    """The editor loaded the email while the campaign was a draft; a launch came first. The
    status is read under the campaign's lock, so the email the launch checked stays as it was."""
    campaign = make_broadcast(org, user=recruiter_user)
    with scopes_disabled():
        step = campaign.steps.select_related("campaign").get()
        subject = step.subject
        campaign_launch(campaign=campaign, user=recruiter_user)

        with pytest.raises(ValidationError, match="has been launched"):
            step_update(step=step, subject="Changed", preheader="", body_markdown="Changed")

        step.refresh_from_db()
    assert step.subject == subject


def test_campaign_email_save_after_launch_says_why_it_was_not_saved(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
    data = {"subject": "Changed", "preheader": "", "body_markdown": "Changed"}

    response = recruiter_client.post(url("email_edit", org, campaign.pk), data)

    assert response.status_code == 200
    assert "This campaign has been launched, so its email can no longer be changed." in (
        response.content.decode()
    )
    with in_org():
        assert campaign.steps.get().subject != "Changed"


def test_template_save_explains_syntax_errors_in_plain_words(recruiter_client, org, in_org):
    response = recruiter_client.post(
        url("template_create", org),
        {
            "name": "Check-in",
            "subject": "Hi {{ first_name",
            "preheader": "",
            "body_markdown": "Hello\n\n{% if city %}In {{ city }}?",
        },
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "Line 1: a merge field is not closed — end it with }}" in body
    assert "Line 3: a {% if %} block is not closed with {% endif %}" in body
    assert "end of print statement" not in body and "Jinja was looking" not in body
    with in_org():
        assert not EmailTemplate.objects.exists()


def test_template_list_shows_subject_merge_fields_as_chips(recruiter_client, org):
    EmailTemplateFactory(organization=org, subject="{{ first_name|default('Hello') }}, new roles")

    body = recruiter_client.get(url("template_list", org)).content.decode()

    import re

    visible = re.sub(r"<[^>]+>", "", body.split("<tbody>")[1])
    assert "{{" not in visible
    assert (
        '<span class="badge rounded-pill text-bg-light border fw-normal font-monospace '
        'merge-chip" title="{{ first_name|default(&#x27;Hello&#x27;) }}">first_name</span>, '
        "new roles"
    ) in body


def test_broadcast_page_says_machine_activity_in_words_and_has_no_step_column(
    recruiter_client, launched_broadcast, org, in_org
):
    from analytics.services import engagement_event_record

    campaign, _ = launched_broadcast
    with in_org():
        engagement_event_record(
            organization_id=org.pk,
            kind="opened",
            campaign_id=campaign.pk,
            is_machine=True,
            machine_reason="seconds_after_send",
        )

    body = " ".join(recruiter_client.get(url("detail", org, campaign.pk)).content.decode().split())

    assert (
        "Flagged as machine activity, not counted: 1 open (security scanner: fetched within "
        "seconds of delivery)."
    ) in body
    assert "Machines:" not in body
    assert '<th scope="col">Step</th>' not in body and "Email 1" not in body


def test_draft_broadcast_has_no_sent_emails_button_until_launched(
    recruiter_client, recruiter_user, org, in_org
):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    sent_emails = url("messages", org, campaign.pk)

    draft = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
    launched = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    assert f'href="{sent_emails}"' not in draft
    assert f'href="{sent_emails}"' in launched


def test_new_broadcast_page_says_pools_can_be_chosen_too(recruiter_client, org):
    body = " ".join(recruiter_client.get(url("create", org)).content.decode().split())
    assert "everyone a saved search finds" not in body
    assert (
        "One email to everyone your chosen saved searches find and everyone in your chosen "
        "talent pools."
    ) in body
