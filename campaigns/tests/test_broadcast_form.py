"""The broadcast form when it fails: a summary of what to fix at its top, each error beside
what caused it (the audience's beside the audience), and "Send at" only with a chosen time."""

import re

from django.urls import reverse

from campaigns.tests.factories import EmailTemplateFactory, SavedSearchFactory


def _create_url(org) -> str:
    return reverse("campaigns:create", args=[org.slug])


def _post(template, **fields) -> dict:
    return {"name": "Spring roles", "template": template.pk, "topic": "jobs", **fields}


def _between(body: str, start: str, end: str) -> str:
    begin = body.index(start)
    return body[begin : body.index(end, begin)]


def test_broadcast_form_shows_the_missing_audience_over_the_audience_not_under_send_to(
    recruiter_client, recruiter_user, org
):
    template = EmailTemplateFactory(organization=org)
    SavedSearchFactory(organization=org, owner=recruiter_user)

    body = recruiter_client.post(
        _create_url(org), _post(template, send_when="now")
    ).content.decode()

    audience = _between(body, '<fieldset id="audience"', '<fieldset class="mb-3"')
    assert 'aria-describedby="audience_errors audience_help"' in audience
    flat = " ".join(body.split())
    assert (
        '<div class="invalid-feedback d-block mb-2" id="audience_errors"> <div>Choose who '
        "receives it: at least one saved search or talent pool.</div>"
    ) in flat
    assert "id_saved_searches_errors" not in body  # not an error of "Send to" alone
    # One of the two is needed: neither says "(optional)".
    send_to = _between(body, 'id="id_saved_searches"', "</legend>")
    pools = _between(body, 'id="id_pools"', "</legend>")
    assert "(optional)" not in send_to and "(optional)" not in pools


def test_broadcast_form_summarises_its_errors_at_the_top_with_links_to_the_fields(
    recruiter_client, recruiter_user, org
):
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=recruiter_user)

    body = recruiter_client.post(
        _create_url(org),
        _post(template, name="", saved_searches=[search.pk], send_when="later"),
    ).content.decode()

    summary = _between(
        body, '<div class="alert alert-danger" role="alert" id="form-errors">', "</div>"
    )
    items = [
        " ".join(re.sub(r"<[^>]+>", "", item).split())
        for item in re.findall(r"<li>(.*?)</li>", summary, re.S)
    ]
    assert items == ["Name: This field is required.", "Send at: Choose when to send it."]
    assert '<a class="alert-link" href="#id_name">Name</a>' in summary
    assert '<a class="alert-link" href="#id_scheduled_at">Send at</a>' in summary
    assert body.index('id="form-errors"') < body.index('id="id_name"')  # before the fields


def test_broadcast_form_summary_lists_the_audience_problem(recruiter_client, org):
    template = EmailTemplateFactory(organization=org)

    body = recruiter_client.post(
        _create_url(org), _post(template, send_when="now")
    ).content.decode()

    summary = _between(body, 'id="form-errors"', "</ul>")
    assert "<li>Choose who receives it: at least one saved search or talent pool.</li>" in summary


def test_broadcast_form_has_no_summary_before_it_is_sent(recruiter_client, org):
    body = recruiter_client.get(_create_url(org)).content.decode()
    assert 'id="form-errors"' not in body and 'id="audience_errors"' not in body


def test_broadcast_form_shows_send_at_only_for_a_chosen_time(recruiter_client, org):
    """rapport.js hides a [data-show-when] part unless its choice is ticked; without JavaScript
    the field shows, its help saying when it counts."""
    body = recruiter_client.get(_create_url(org)).content.decode()

    part = _between(body, '<div data-show-when="send_when=later">', "</div>\n            <div")
    assert 'id="id_scheduled_at"' in part
    assert 'value="later"' in _between(body, 'id="id_send_when"', "</fieldset>")
    assert "Only when sending at a time you choose" in part
