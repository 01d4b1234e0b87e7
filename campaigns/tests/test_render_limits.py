"""Email templates cannot make unbounded text or work: refused at save and in previews, and a
message that runs into a bound at send time fails alone, with its reason."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import EmailTemplate, Message
from campaigns.services import rendering
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import BODY, EmailTemplateFactory, make_broadcast, make_candidates
from candidates.tests.factories import CustomFieldFactory


def doubling(times: int, start: str = '"aaaaaaaaaaaaaaaa"') -> str:
    """The audit's template: 20 lines make 16 MiB, 40 would make 16 TiB."""
    return f"{{% set a = {start} %}}" + "{% set a = a ~ a %}" * times + "{{ a }}"


TOO_MUCH_TEXT = "This template produces too much text."
TOO_MUCH_WORK = "This template repeats too much: make its loops or the text it repeats smaller."
BIG = doubling(19, '"x"').removesuffix("{{ a }}")  # a: 524,288 characters, half the bound


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (doubling(20), TOO_MUCH_TEXT),
        (doubling(40), TOO_MUCH_TEXT),
        ("{% set a = first_name %}" + "{% set a = a + a + a %}" * 30 + "{{ a }}", TOO_MUCH_TEXT),
        ("{{ first_name" + '|replace("a", "aaaaaaaaaaaaaaaaaaaa")' * 10 + " }}", TOO_MUCH_TEXT),
        ('{{ "Ada"' + '|replace("a", "aaaaaaaaaaaaaaaaaaaa")' * 10 + " }}", TOO_MUCH_TEXT),
        (
            '{{ "Ada"|replace("", "' + "x" * 2000 + '")|replace("", "' + "x" * 2000 + '") }}',
            TOO_MUCH_TEXT,
        ),
        (BIG + '{{ a|join("--") }}', TOO_MUCH_TEXT),
        (BIG + "{{ a }}{{ a }}", TOO_MUCH_TEXT),  # each part fits, the email does not
        (BIG + "{% filter upper %}{{ a }}{{ a }}{% endfilter %}", TOO_MUCH_TEXT),
        (BIG + "{% set l = [a, a, a] %}{{ l }}", TOO_MUCH_TEXT),
        (BIG + "{% if a in a %}{% endif %}" * 40, TOO_MUCH_WORK),
        (BIG + "{{ a|wordcount }}" * 40, TOO_MUCH_WORK),
        (
            "{% set l = [" + ", ".join(["1"] * 600) + "] %}"
            "{% for x in l %}{% for y in l %}{% endfor %}{% endfor %}",
            TOO_MUCH_WORK,
        ),
        (BIG + "{% for c in a %}{% endfor %}", TOO_MUCH_WORK),  # half a million letters
        ("{% set l = [first_name] %}" + "{% set l = [l, l] %}" * 40 + "{{ l }}", "A list in"),
        ("{% set l = skills %}" + "{% set l = l + l %}" * 40 + "{{ l }}", "Only numbers and text"),
    ],
)
def test_template_that_would_grow_without_bound_is_refused_at_save(source, message):
    problems = rendering.template_problems(source)
    assert [str(problem) for problem in problems] != []
    assert str(problems[0]).startswith(message)


def test_template_too_long_to_be_an_email_is_refused():
    problems = rendering.template_problems("Hello " * 20_000)
    assert [str(problem) for problem in problems] == [
        "This template is too long: keep it under 100,000 characters."
    ]


@pytest.mark.parametrize(
    "source",
    [
        BODY,
        '{% for skill in skills %}- {{ skill|title }}\n{% endfor %}{{ skills|join(", ") }}',
        '{% if city in ["London", "Paris"] %}near{% endif %} {{ (first_name ~ " " ~ last_name) }}',
        "{% filter upper %}{{ recruiter.name }}{% endfilter %} {{ skills[0] }} {{ 1 + 2 }}",
        '{% set greeting = "Hi " + first_name|default("there") %}{{ greeting|truncate(20) }}',
    ],
)
def test_ordinary_templates_render_as_before(source):
    assert rendering.template_problems(source) == []
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    rendered = rendering.email_render(compiled, rendering.sample_context())
    assert rendered.text_body.strip() != ""


def test_ordinary_template_output():
    source = (
        "{% for skill in skills %}{{ skill|upper }}{% if not loop.last %}, {% endif %}{% endfor %}"
        ' — {{ first_name ~ "!" }} {{ 1 + 2 }} {% if city in ["London"] %}London{% endif %}'
    )
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    rendered = rendering.email_render(compiled, rendering.sample_context())
    assert rendered.text_body == "PYTHON, POSTGRES — Ada! 3 London\n"


def test_a_bound_reached_at_render_is_a_template_error():
    """Validation renders with the sample values; a candidate's own values may still go over."""
    source = "{% set a = custom.bio %}" + "{% set a = a ~ a %}" * 10 + "{{ a }}"
    assert rendering.template_problems(source, custom_keys=["bio"]) == []
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    context = {**rendering.sample_context(custom_keys=["bio"]), "custom": {"bio": "b" * 2_000}}

    with pytest.raises(rendering.RenderLimitExceeded, match=TOO_MUCH_TEXT):
        rendering.email_render(compiled, context)


def test_dispatch_fails_only_the_message_that_reaches_a_bound(org, recruiter_user, in_org):
    CustomFieldFactory(organization=org, key="bio", label="Bio")
    CustomFieldFactory(organization=org, key="years", label="Years")
    short = make_candidates(org, 1, custom_fields={"bio": "short", "years": 4})[0]
    long = make_candidates(org, 1, custom_fields={"bio": "b" * 2_000, "years": 4})[0]
    wordy = make_candidates(org, 1, custom_fields={"bio": "short", "years": "four"})[0]
    body = (
        "{% set a = custom.bio %}" + "{% set a = a ~ a %}" * 10 + "{{ a|length }} {{ a }}\n\n"
        "{{ custom.years + 1 }} years"
    )
    campaign = make_broadcast(org, user=recruiter_user, body=body)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        report = dispatch_due()  # one chunk: it must not fail as a whole
        messages = {m.candidate_id: m for m in Message.objects.filter(campaign=campaign)}

    assert report.claimed == 3 and len(messages) == 3
    assert messages[short.pk].status == Message.Status.QUEUED
    assert "5120 shortshort" in messages[short.pk].text and "5 years" in messages[short.pk].text
    assert messages[long.pk].status == Message.Status.FAILED
    assert messages[long.pk].last_error == f"Rendering failed: {TOO_MUCH_TEXT}"
    assert messages[wordy.pk].status == Message.Status.FAILED
    assert messages[wordy.pk].last_error.startswith("Rendering failed: TypeError")


def _preview(client, org, template, body):
    return client.post(
        reverse("campaigns:template_preview", args=[org.slug, template.pk]),
        {"subject": "Hi", "preheader": "", "body_markdown": body},
    )


def test_recruiter_preview_of_a_growing_template_says_so_without_rendering_it(
    recruiter_client, org
):
    template = EmailTemplateFactory(organization=org)
    response = _preview(recruiter_client, org, template, doubling(20))
    assert response.status_code == 200
    assert len(response.content) < 10_000
    assert TOO_MUCH_TEXT in response.content.decode()


def test_viewer_preview_never_renders_unsaved_text(viewer_client, org):
    template = EmailTemplateFactory(organization=org, body_markdown="Saved **text**")
    response = _preview(viewer_client, org, template, doubling(20))
    assert response.status_code == 200
    assert "Saved <strong>text</strong>" in response.content.decode()
    assert len(response.content) < 100_000


@pytest.mark.parametrize("role", ["viewer", "recruiter"])
def test_campaign_preview_renders_unsaved_text_only_for_recruiters(
    request, role, org, recruiter_user
):
    client = request.getfixturevalue(f"{role}_client")
    campaign = make_broadcast(org, user=recruiter_user, body="Saved **text**")
    response = client.post(
        reverse("campaigns:preview", args=[org.slug, campaign.pk]),
        {"subject": "Hi", "preheader": "", "body_markdown": "Unsaved **text**"},
    )
    shown = "Unsaved" if role == "recruiter" else "Saved"
    assert f"{shown} <strong>text</strong>" in response.content.decode()


def test_saving_a_growing_template_is_refused(recruiter_client, org):
    response = recruiter_client.post(
        reverse("campaigns:template_create", args=[org.slug]),
        {"name": "Big", "subject": "Hi", "preheader": "", "body_markdown": doubling(20)},
    )
    assert response.status_code == 200
    assert TOO_MUCH_TEXT in response.content.decode()
    with scopes_disabled():
        assert not EmailTemplate.objects.filter(organization=org).exists()
