"""What the campaign pages say and offer: honest labels and the kind's own part on the step
form, no branch on a previous email for the first step, the organisation's custom fields in
every merge-field list, read-only editors for a viewer, a preview that says when it is not the
text beside it, readable buttons and tables that fit a phone."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Message, Step
from campaigns.sequence_forms import StepForm
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import EmailTemplateFactory, make_broadcast, make_candidates
from campaigns.tests.test_sequences import launched, make_sequence
from candidates.tests.factories import CustomFieldFactory

NOT_OPENED = "Only if the previous email was not opened"
NOT_SAVED = "Not saved: this preview shows the last saved version."


def url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def label_of(body: str, field_id: str) -> str:
    """The text of a field's <label>, whitespace collapsed."""
    match = re.search(rf'<label class="form-label" for="{field_id}">(.*?)</label>', body, re.S)
    assert match, field_id
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


def step_post(**fields) -> dict:
    return {"kind": "email", "delay_amount": "2", "delay_unit": "days", **fields}


# --- the step form ---


def test_step_form_labels_say_what_each_kind_needs(recruiter_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])

    body = recruiter_client.get(url("step_create", org, campaign.pk)).content.decode()

    assert [label_of(body, f"id_{name}") for name in ("subject", "body_markdown")] == [
        "Subject",
        "Body",
    ]
    assert label_of(body, "id_task_note") == "What should the recruiter do?"
    assert label_of(body, "id_preheader") == "Preheader (optional)"


def test_step_form_shows_each_kinds_part_under_a_heading(recruiter_client, recruiter_user, org):
    """Without JavaScript both parts show; rapport.js's data-show-when hook hides the other."""
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])

    body = recruiter_client.get(url("step_create", org, campaign.pk)).content.decode()

    email_part = body.index('data-show-when="kind=email"')
    task_part = body.index('data-show-when="kind=task"')
    assert email_part < body.index('id="id_subject"') < task_part < body.index('id="id_task_note"')
    assert "For an email step" in body and "For a task for the recruiter" in body


def test_step_form_asks_each_kind_only_for_its_own_fields(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])

    email = recruiter_client.post(url("step_create", org, campaign.pk), step_post())
    task = recruiter_client.post(url("step_create", org, campaign.pk), step_post(kind="task"))

    assert email.context["form"].errors == {
        "subject": ["An email step needs this."],
        "body_markdown": ["An email step needs this."],
    }
    assert task.context["form"].errors == {"task_note": ["Say what the recruiter should do."]}
    with in_org():
        assert campaign.steps.count() == 1


def test_step_form_without_a_kind_says_only_that(org):
    form = StepForm({"delay_amount": "1", "delay_unit": "days"}, organization=org, first_step=False)

    assert form.errors == {"kind": ["This field is required."]}
    assert [form.fields[name].required for name in ("subject", "task_note")] == [True, True]


def test_first_step_offers_no_condition_on_a_previous_email(
    recruiter_client, recruiter_user, org, in_org
):
    empty = make_sequence(org, user=recruiter_user, steps=[], name="Empty")
    started = make_sequence(org, user=recruiter_user, steps=[{}, {}], name="Started")
    with in_org():
        first, second = started.steps.order_by("position")

    new_first = recruiter_client.get(url("step_create", org, empty.pk)).content.decode()
    edit_first = recruiter_client.get(url("step_edit", org, started.pk, first.pk)).content.decode()
    new_third = recruiter_client.get(url("step_create", org, started.pk)).content.decode()
    edit_second = recruiter_client.get(
        url("step_edit", org, started.pk, second.pk)
    ).content.decode()

    assert NOT_OPENED not in new_first and NOT_OPENED not in edit_first
    assert StepForm.FIRST_STEP_CONDITION in new_first and 'name="condition"' not in new_first
    assert NOT_OPENED in new_third and NOT_OPENED in edit_second


def test_first_step_with_a_condition_is_refused(recruiter_client, recruiter_user, org, in_org):
    campaign = make_sequence(org, user=recruiter_user, steps=[])
    data = step_post(condition="not_opened", subject="Hi", body_markdown="Hello")

    response = recruiter_client.post(url("step_create", org, campaign.pk), data)

    assert response.status_code == 200
    assert response.context["form"].errors == {"condition": [StepForm.FIRST_STEP_CONDITION]}
    assert StepForm.FIRST_STEP_CONDITION in response.content.decode()
    with in_org():
        assert not campaign.steps.exists()


def test_first_step_moved_up_with_a_condition_is_saved_as_always(
    recruiter_client, recruiter_user, org, in_org
):
    """A step that became the first one by a move keeps its condition until it is saved."""
    campaign = make_sequence(org, user=recruiter_user, steps=[{"condition": "not_clicked"}])
    with in_org():
        step = campaign.steps.get()
    data = step_post(subject="Hi", body_markdown="Hello")  # the page sends no condition

    response = recruiter_client.post(url("step_edit", org, campaign.pk, step.pk), data)

    assert response.status_code == 302
    step.refresh_from_db()
    assert step.condition == Step.Condition.ALWAYS


def test_step_form_lists_the_organisations_custom_fields(recruiter_client, recruiter_user, org):
    CustomFieldFactory(
        organization=org,
        key="work_mode",
        label="Work mode",
        field_type="choice",
        choices=["Hybrid", "Remote"],
    )
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        step = campaign.steps.get()

    new = recruiter_client.get(url("step_create", org, campaign.pk)).content.decode()
    edit = recruiter_client.get(url("step_edit", org, campaign.pk, step.pk)).content.decode()

    for body in (new, edit):
        assert "custom.work_mode" in body and "Work mode (choice custom field)" in body


# --- read-only for a viewer ---


def _enabled_fields(body: str) -> list[str]:
    """The names of the email form's inputs and textareas that are not disabled."""
    form = body[
        body.index('id="email-form"') : body.index("</form>", body.index('id="email-form"'))
    ]
    tags = re.findall(r"<(?:input|textarea)\b[^>]*>", form)
    return [
        re.search(r'name="([^"]+)"', tag).group(1)
        for tag in tags
        if 'type="hidden"' not in tag and " disabled" not in tag
    ]


def test_template_editor_is_read_only_for_a_viewer(viewer_client, recruiter_client, org):
    template = EmailTemplateFactory(organization=org)

    viewer = viewer_client.get(url("template_edit", org, template.pk)).content.decode()
    recruiter = recruiter_client.get(url("template_edit", org, template.pk)).content.decode()

    assert _enabled_fields(viewer) == []
    assert "Save template" not in viewer and "Update preview" not in viewer
    assert "Show preview" in viewer and "Your role cannot change it" in viewer
    assert '">Cancel</a>' in viewer and not re.search(r">\s*Back\s*<", viewer)  # as on every form
    assert _enabled_fields(recruiter) == ["name", "subject", "preheader", "body_markdown"]
    assert "Save template" in recruiter and "Update preview" in recruiter


def test_campaign_email_editor_is_read_only_for_a_viewer(
    viewer_client, recruiter_client, recruiter_user, org
):
    campaign = make_broadcast(org, user=recruiter_user)

    viewer = viewer_client.get(url("email_edit", org, campaign.pk)).content.decode()
    recruiter = recruiter_client.get(url("email_edit", org, campaign.pk)).content.decode()

    assert _enabled_fields(viewer) == []
    assert "Save email" not in viewer and "Edit the email" not in viewer
    assert _enabled_fields(recruiter) == ["subject", "preheader", "body_markdown"]
    assert "Save email" in recruiter and "Edit the email" in recruiter


def test_viewer_preview_of_a_template_shows_the_saved_text(viewer_client, org):
    """Disabled fields are not sent: "Show preview" previews the saved email."""
    template = EmailTemplateFactory(organization=org, body_markdown="Saved **text**")

    response = viewer_client.post(url("template_preview", org, template.pk), {"candidate": ""})

    assert "Saved <strong>text</strong>" in response.content.decode()


@pytest.mark.parametrize("name", ["sequence_edit", "step_create"])
def test_sequence_editors_are_403_for_a_viewer_reading_them(
    viewer_client, recruiter_user, org, name
):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    assert viewer_client.get(url(name, org, campaign.pk)).status_code == 403


def test_step_editor_is_403_for_a_viewer_reading_it(viewer_client, recruiter_user, org):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        step = campaign.steps.get()
    assert viewer_client.get(url("step_edit", org, campaign.pk, step.pk)).status_code == 403


def test_sequence_page_offers_a_viewer_no_editor(viewer_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=2)}])
    with scopes_disabled():
        steps = list(campaign.steps.order_by("position"))

    body = viewer_client.get(url("detail", org, campaign.pk)).content.decode()

    assert url("sequence_edit", org, campaign.pk) not in body
    assert url("pause", org, campaign.pk) not in body
    # Only the steps' emails, read-only: no step page (a viewer gets a 403 there).
    step_links = re.findall(r'href="([^"]*/steps/[^"]*)"', body)
    assert step_links == [url("step_preview", org, campaign.pk, step.pk) for step in steps]


# --- the preview after a failed save ---


def test_failed_template_save_says_the_preview_is_the_last_saved_version(recruiter_client, org):
    template = EmailTemplateFactory(organization=org)
    data = {"name": "T", "subject": "Hi", "preheader": "", "body_markdown": "Hi {{ first_name "}

    failed = recruiter_client.post(url("template_edit", org, template.pk), data).content.decode()
    fresh = recruiter_client.get(url("template_edit", org, template.pk)).content.decode()

    assert NOT_SAVED in failed and 'title="Preview of the last saved email"' in failed
    assert NOT_SAVED not in fresh and 'title="Preview of the email"' in fresh


def test_failed_campaign_email_save_says_the_preview_is_the_last_saved_version(
    recruiter_client, recruiter_user, org
):
    campaign = make_broadcast(org, user=recruiter_user)
    data = {"subject": "Hi", "preheader": "", "body_markdown": "{% include 'base.html' %}"}

    failed = recruiter_client.post(url("email_edit", org, campaign.pk), data).content.decode()

    assert NOT_SAVED in failed


def test_failed_step_save_says_the_preview_is_the_last_saved_version(
    recruiter_client, recruiter_user, org, in_org
):
    campaign = make_sequence(org, user=recruiter_user, steps=[{}])
    with in_org():
        step = campaign.steps.get()
    data = step_post(subject="Hi", body_markdown="Hi {{ first_name ")

    failed = recruiter_client.post(url("step_edit", org, campaign.pk, step.pk), data)
    fresh = recruiter_client.get(url("step_edit", org, campaign.pk, step.pk))

    assert NOT_SAVED in failed.content.decode()
    assert NOT_SAVED not in fresh.content.decode()


# --- buttons and tables ---


def test_pause_button_has_dark_text_on_yellow(recruiter_client, recruiter_user, org):
    campaign, _ = launched(org, recruiter_user, [{}, {"delay": timedelta(days=2)}])

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    assert "btn-outline-warning" not in body
    pause = body[body.index(url("pause", org, campaign.pk)) :]
    assert pause.index('class="btn btn-warning"') < pause.index("Pause")


def test_sequence_form_says_who_joins_at_launch(recruiter_client, org):
    body = recruiter_client.get(url("sequence_create", org)).content.decode()

    assert "No — only the saved searches and pools above, at launch" in body
    assert "only if the pool is also ticked above" in body
    assert "only the saved searches at launch" not in body


def test_sequence_candidates_give_phones_the_step_and_date_under_the_name(
    recruiter_client, recruiter_user, org
):
    """Phones hide the Step and Next columns (`d-none d-sm-table-cell`); a line under the
    name has them, so the Remove buttons fit."""
    campaign, _ = launched(org, recruiter_user, [{"delay": timedelta(days=2)}, {}], candidates=1)

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    start = body.index('<div class="small text-body-secondary d-sm-none enrollment-phone-line">')
    line = " ".join(re.sub(r"<[^>]+>", "", body[start : body.index("</div>", start)]).split())
    assert re.fullmatch(r"Step 1 · next \d{1,2} \w{3}, \d\d:\d\d", line), line
    assert body.count('class="d-none d-sm-table-cell text-end enrollment-step"') == 2
    assert body.count('class="d-none d-sm-table-cell enrollment-next"') == 1
    assert body.count('class="small text-nowrap d-none d-sm-table-cell enrollment-next"') == 1


def test_broadcast_results_are_a_grid_on_phones_and_a_table_above(
    recruiter_client, recruiter_user, org, in_org
):
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        Message.objects.update(status="delivered")

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    phone = body[body.index("step-stats-phone") : body.index('step-stats"')]
    assert '<div class="card-body d-sm-none step-stats-phone">' in body
    assert '<div class="table-responsive d-none d-sm-block results-table-box"' in body
    figures = re.findall(r'<dt class="text-body-secondary fw-normal">([^<]+)</dt>', phone)
    # The chart's measures, in its order (emails not sent are a line under both).
    assert figures == [
        "Sent",
        "Delivered",
        "Opened",
        "Clicked",
        "Replied",
        "Unsubscribed",
        "Bounced",
    ]


def _home_panel_after_a_launch(client, user, org, in_org, *, candidates: int) -> str:
    """The home page's campaigns panel once a broadcast to `candidates` people is launched."""
    make_candidates(org, candidates)
    campaign = make_broadcast(org, user=user, name="Spring roles")
    with in_org():
        campaign_launch(campaign=campaign, user=user)
    body = client.get(reverse("dashboard", args=[org.slug])).content.decode()
    start = body.index('id="home-campaigns-title"')
    return body[start : body.index("</section>", start)]


def test_home_panel_gives_phones_the_counts_under_the_name(
    recruiter_client, recruiter_user, org, in_org
):
    panel = _home_panel_after_a_launch(recruiter_client, recruiter_user, org, in_org, candidates=2)
    start = panel.index('<div class="small text-body-secondary d-sm-none">')
    line = " ".join(panel[panel.index(">", start) + 1 : panel.index("</div>", start)].split())
    assert line == "2 candidates · 0 sent"
    assert panel.count('class="text-end d-none d-sm-table-cell"') == 4  # 2 headers, 2 cells


def test_home_panel_colours_the_status_badge_as_the_campaign_list_does(
    recruiter_client, recruiter_user, org, in_org
):
    panel = _home_panel_after_a_launch(recruiter_client, recruiter_user, org, in_org, candidates=1)
    badge = '<span class="badge campaign-status campaign-status-running">Sending</span>'
    assert badge in panel


# --- the results table, the candidates table, a sent email, test sends, button verbs ---


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_broadcast_results_table_has_the_charts_measures_in_its_order(
    recruiter_client, recruiter_user, org, in_org
):
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        Message.objects.update(status="delivered")

    response = recruiter_client.get(url("detail", org, campaign.pk))

    body = response.content.decode()
    table = body[body.index('<table class="table mb-0 align-top step-stats">') :]
    table = table[: table.index("</table>")]
    headers = re.findall(r'<th scope="col" class="text-center">([^<]+)</th>', table)
    cells = re.findall(r'<td class="text-center">', table)
    assert headers == response.context["results_chart"]["labels"]
    assert len(headers) == 7 and len(cells) == 7  # one email: one row, no eighth column
    assert "Not sent" not in table


def test_broadcast_results_say_what_was_not_sent_under_the_table(
    recruiter_client, recruiter_user, org, in_org
):
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        first, second, _third = Message.objects.order_by("pk")
        Message.objects.filter(pk=first.pk).update(status="skipped")
        Message.objects.filter(pk=second.pk).update(status="failed")

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    start = body.index(
        '<p class="card-body border-top small text-body-secondary mb-0 step-not-sent">'
    )
    line = _text(body[start : body.index("</p>", start)])
    assert line == "Not sent: 2 (1 failed) · See the sent emails"


def test_sequence_candidates_table_gives_the_name_the_room_and_the_time_zone_above(
    recruiter_client, recruiter_user, org
):
    campaign, _ = launched(org, recruiter_user, [{}], candidates=2)

    body = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    table = body[body.index('<table class="table align-middle mb-0 enrollment-table">') :]
    table = table[: table.index("</thead>")]
    headers = re.findall(r'<th scope="col" class="([^"]+)">', table)
    assert headers == [
        "enrollment-candidate",
        "enrollment-status",
        "d-none d-sm-table-cell text-end enrollment-step",
        "d-none d-sm-table-cell enrollment-next",
        "enrollment-actions",
    ]
    assert "Europe" not in table  # the time zone is said once, above the table
    assert '<p class="small text-body-secondary enrollment-time-zone">Times in ' in body
    assert body.count('<td class="enrollment-candidate">') == 2


def _sent_message(org, user, in_org, **fields):
    from datetime import UTC, datetime

    make_candidates(org, 1)
    campaign = make_broadcast(org, user=user)
    with in_org():
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
        message = Message.objects.get()
        Message.objects.filter(pk=message.pk).update(
            sent_at=datetime(2030, 3, 4, 9, 5, 7, tzinfo=UTC), **fields
        )
    return campaign, message


def _delivery_card(client, org, campaign, message) -> str:
    body = client.get(url("message_detail", org, campaign.pk, message.pk)).content.decode()
    start = body.index('<h2 class="h6" id="delivery-heading">')
    return _text(body[start : body.index("</section>", start)])


def test_sent_email_page_shows_no_attempts_for_a_delivered_email(
    recruiter_client, recruiter_user, org, in_org
):
    campaign, message = _sent_message(org, recruiter_user, in_org, status="delivered", attempts=0)

    card = _delivery_card(recruiter_client, org, campaign, message)

    assert card == "Delivery Status Delivered Sent 4 Mar 2030, 09:05"  # no seconds, no attempts


def test_sent_email_page_shows_attempts_when_sending_failed(
    recruiter_client, recruiter_user, org, in_org
):
    campaign, message = _sent_message(
        org, recruiter_user, in_org, status="failed", attempts=5, last_error="Gave up"
    )

    card = _delivery_card(recruiter_client, org, campaign, message)

    assert "Attempts 5" in card and "Last error Gave up" in card


def test_send_a_test_names_the_address_in_its_button_everywhere(
    recruiter_client, recruiter_user, org
):
    template = EmailTemplateFactory(organization=org)
    broadcast = make_broadcast(org, user=recruiter_user)
    sequence = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        step = sequence.steps.get()
    pages = [
        url("template_edit", org, template.pk),
        url("detail", org, broadcast.pk),
        url("step_edit", org, sequence.pk, step.pk),
    ]

    for page in pages:
        body = _text(recruiter_client.get(page).content.decode())
        assert "Send a test to me (rex.recruiter@acme.example)" in body, page
        assert "Send a test to me to" not in body, page


def test_creation_pages_say_create_and_editing_pages_say_save(
    recruiter_client, recruiter_user, org
):
    template = EmailTemplateFactory(organization=org)
    sequence = make_sequence(org, user=recruiter_user, steps=[{}])
    with scopes_disabled():
        step = sequence.steps.get()

    def submit(page: str) -> str:
        body = recruiter_client.get(page).content.decode()
        match = re.search(
            r'<button class="btn btn-primary" type="submit">(.*?)</button>', body, re.S
        )
        return _text(match.group(1))

    assert submit(url("template_create", org)) == "Create template"
    assert submit(url("template_edit", org, template.pk)) == "Save template"
    assert submit(url("create", org)) == "Create broadcast"
    assert submit(url("sequence_create", org)) == "Create sequence"
    assert submit(url("sequence_edit", org, sequence.pk)) == "Save settings"
    assert submit(url("step_create", org, sequence.pk)) == "Create step"
    assert submit(url("step_edit", org, sequence.pk, step.pk)) == "Save step"
    detail = _text(recruiter_client.get(url("detail", org, sequence.pk)).content.decode())
    assert "New step" in detail and "Add step" not in detail
