"""Templates that Jinja or Python cannot compile or render (a truncate shorter than its
ending, text that looks like the editor's placeholders, nesting deeper than Python's compiler
takes): refused at save, shown as an error in previews, and — saved before validation knew
them — failing only their own messages when the dispatcher renders them, never the chunk that
other campaigns and organisations share."""

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled
from jinja2 import TemplateError

from campaigns.models import Campaign, EmailTemplate, Enrollment, Message, Step
from campaigns.services import rendering
from campaigns.services.campaigns import campaign_launch, campaign_launch_problems
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from crm.models import Role
from tests.factories import MembershipFactory, UserFactory

# Each passed validation before, then raised something other than a TemplateError when compiled
# or rendered (in brackets), which rolled back the dispatcher's chunk.
TRIGGERS = {
    "truncate-shorter-than-ending": "Hi {{ first_name|truncate(2) }}",  # AssertionError
    "placeholder-text": "Hello JINJASEGMENT7X",  # IndexError
    "100-nested-ifs": "{% if city %}" * 100 + "x" + "{% endif %}" * 100,  # IndentationError
    "200-filters": "{{ first_name" + "|upper" * 200 + " }}",  # SyntaxError
    "80-nested-brackets": "{{ " + "(" * 80 + "first_name" + ")" * 80 + " }}",  # RecursionError
    "1000-nots": "{{ " + "not " * 1000 + "first_name }}",  # RecursionError
    "300-nested-ifs": "{% if city %}" * 300 + "x" + "{% endif %}" * 300,  # RecursionError
}
REFUSED = {name: body for name, body in TRIGGERS.items() if name != "placeholder-text"}
GOOD_BODY = "Hi {{ first_name }}, we have a role for you."


def _client(user) -> Client:
    client = Client(raise_request_exception=False)  # a 500 is an answer here, not an exception
    client.force_login(user)
    return client


# --- validation at save -------------------------------------------------------------------------


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_template_that_cannot_compile_or_render_is_refused_at_save(recruiter_user, org, body):
    response = _client(recruiter_user).post(
        reverse("campaigns:template_create", args=[org.slug]),
        {"name": "Bad", "subject": "Hi", "preheader": "", "body_markdown": body},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["body_markdown"]
    assert errors
    assert any("nested too deeply" in e or "“truncate” needs a length" in e for e in errors)
    with scopes_disabled():
        assert not EmailTemplate.objects.filter(organization=org).exists()


def test_truncate_shorter_than_its_ending_is_refused_in_a_subject_too(recruiter_user, org):
    response = _client(recruiter_user).post(
        reverse("campaigns:template_create", args=[org.slug]),
        {
            "name": "Short",
            "subject": '{{ first_name|truncate(4, true, "-----") }}',
            "preheader": "",
            "body_markdown": GOOD_BODY,
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["subject"] == [
        "Line 1: “truncate” needs a length of at least 5, the length of its ending “-----”, "
        "e.g. {{ first_name|truncate(20) }}."
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name|truncate(2) }}",
        "{{ first_name|truncate(-1) }}",
        "{{ first_name|truncate(length=4, end='.....') }}",
        "{{ first_name|truncate(10, false, '...', -1) }}",
        "{{ first_name|truncate(10, leeway=-2) }}",
    ],
)
def test_truncate_arguments_jinja_asserts_on_are_refused(source):
    problems = rendering.template_problems(source)
    assert len(problems) == 1
    assert "“truncate”" in problems[0].message


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name|truncate(3) }}",
        "{{ first_name|truncate(1, end='') }}",
        "{{ first_name|truncate(10, true, '…', 0) }}",
        "{{ first_name|truncate }}",
        "{% if city %}" * 20 + "x" + "{% endif %}" * 20,
        "{{ first_name" + "|trim" * 20 + " }}",
        "{{ " + "(" * 10 + "first_name" + ")" * 10 + " }}",
        "Hello JINJASEGMENT7X",
    ],
)
def test_reasonable_templates_still_pass(source):
    assert rendering.template_problems(source, markdown=True) == []


def test_truncate_with_a_length_from_a_merge_field_fails_at_render_as_a_template_error():
    source = "{{ first_name|truncate(first_name|length) }}"
    assert rendering.template_problems(source) == []  # "Ada": 3, room for "..."
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    with pytest.raises(TemplateError, match="needs a length of at least 3"):
        rendering.email_render(compiled, {**rendering.sample_context(), "first_name": "Al"})


def _deep(levels: int, function):
    """`function` called `levels` frames further down the stack: a view behind its middleware,
    or a worker, compiles templates deeper than a test does."""
    return function() if levels == 0 else _deep(levels - 1, function)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "{% if city %}" * n + "x" + "{% endif %}" * n,
        lambda n: "{% filter upper %}" * n + "x" + "{% endfilter %}" * n,
        lambda n: "{{ first_name" + "|upper" * n + " }}",
        lambda n: "{{ first_name" + " + city" * n + " }}",
        lambda n: "{{ " + "not " * n + "city }}",
        lambda n: "{{ " + "(city ~ " * n + "city" + ")|upper" * n + " }}",
        lambda n: "{{ " + "[" * n + "1" + "]" * n + " }}",
        lambda n: "{% if " + "city and " * n + "city %}x{% endif %}",
    ],
    ids=["ifs", "filter-blocks", "filters", "additions", "nots", "concat", "lists", "ands"],
)
def test_whatever_validation_accepts_compiles_and_renders_deep_in_a_stack(make):
    accepted = 0
    for n in range(1, 300):
        if rendering.template_problems(make(n), markdown=True):
            break
        accepted = n
    assert 10 <= accepted < 299  # a limit, below what Jinja and Python break on
    source = make(accepted)

    def send():
        compiled = rendering.email_compile(subject=source, preheader=source, body_markdown=source)
        return rendering.email_render(compiled, rendering.sample_context())

    _deep(600, send)


# --- compiling and rendering: TemplateErrors only -----------------------------------------------


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_a_template_that_bypassed_validation_raises_only_template_errors(body):
    with pytest.raises(TemplateError):
        compiled = rendering.email_compile(subject="s", preheader="", body_markdown=body)
        rendering.email_render(compiled, rendering.sample_context())


def test_a_template_that_cannot_compile_fails_again_without_compiling_again():
    body = TRIGGERS["100-nested-ifs"] + "\nOnly in this test."
    with pytest.raises(rendering.TemplateCompileError, match="nested too deeply"):
        rendering.email_compile(subject="s", preheader="", body_markdown=body)
    hits = rendering._email_compile.cache_info().hits
    with pytest.raises(rendering.TemplateCompileError, match="nested too deeply"):
        rendering.email_compile(subject="s", preheader="", body_markdown=body)
    assert rendering._email_compile.cache_info().hits == hits + 1


def test_text_that_looks_like_the_editors_placeholder_renders_as_written():
    # &#83; is an S: Markdown decodes it, so the HTML gets the placeholder's look as well.
    body = "Hello JINJASEGMENT7X, JINJASEGMENT0X and JINJA&#83;EGMENT0X from {{ first_name }}"
    assert rendering.template_problems(body, markdown=True) == []
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=body)
    rendered = rendering.email_render(compiled, rendering.sample_context())
    words = "Hello JINJASEGMENT7X, JINJASEGMENT0X and JINJASEGMENT0X from Ada"
    assert rendered.html_body == f"<p>{words}</p>"
    assert rendered.text_body == f"{words}\n"


# --- previews of templates saved before validation refused them ---------------------------------


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_campaign_page_and_preview_of_a_stored_bad_template_show_the_error(
    org, recruiter_user, body
):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user, body=body)  # written straight to the DB
    client = _client(recruiter_user)
    page = client.get(reverse("campaigns:detail", args=[org.slug, campaign.pk]))
    assert page.status_code == 200
    preview = client.get(reverse("campaigns:preview", args=[org.slug, campaign.pk]))
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "nested too deeply" in text or "needs a length of at least 3" in text
    with scopes_disabled():
        assert campaign_launch_problems(campaign=campaign, user=recruiter_user)


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_template_preview_of_a_stored_bad_template_shows_the_error(org, recruiter_user, body):
    with scopes_disabled():
        template = EmailTemplate.objects.create(
            organization=org,
            name="Old",
            subject="Hi",
            body_markdown=body,
            created_by=recruiter_user,
        )
    client = _client(recruiter_user)
    url = reverse("campaigns:template_preview", args=[org.slug, template.pk])
    for response in (client.get(url), client.post(url, {"body_markdown": body})):
        assert response.status_code == 200
        text = response.content.decode()
        assert "nested too deeply" in text or "needs a length of at least 3" in text
    edit = client.get(reverse("campaigns:template_edit", args=[org.slug, template.pk]))
    assert edit.status_code == 200


# --- the dispatcher: one campaign's bad template fails its own messages only --------------------


def _launched_elsewhere(other_org) -> Campaign:
    """A good broadcast of another organisation, launched: its enrollments are due too."""
    other_user = UserFactory(email="olga@globex.example")
    MembershipFactory(organization=other_org, user=other_user, role=Role.RECRUITER)
    make_candidates(other_org, 2)
    campaign = make_broadcast(other_org, user=other_user, body=GOOD_BODY)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=other_user)
    return campaign


def _launched_then_broken(org, user, body: str) -> Campaign:
    """A broadcast launched with a good email whose step was then given `body` straight in the
    database: a template saved and launched before validation refused its kind."""
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=user, body=GOOD_BODY)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user)
        Step.objects.filter(campaign=campaign).update(body_markdown=body)
    return campaign


@pytest.mark.parametrize("body", TRIGGERS.values(), ids=TRIGGERS.keys())
def test_dispatch_fails_only_the_messages_of_a_stored_bad_template(
    org, other_org, recruiter_user, body
):
    broken = _launched_then_broken(org, recruiter_user, body)
    fine = make_broadcast(org, user=recruiter_user, body=GOOD_BODY, name="Fine")
    elsewhere = _launched_elsewhere(other_org)
    with scopes_disabled():
        campaign_launch(campaign=fine, user=recruiter_user)
        dispatch_due()  # one chunk: all three campaigns' enrollments

        for campaign in (fine, elsewhere):
            statuses = set(
                Message.objects.filter(campaign=campaign).values_list("status", flat=True)
            )
            assert statuses == {Message.Status.QUEUED}
        broken_messages = list(Message.objects.filter(campaign=broken))
        assert not Enrollment.objects.filter(status=Enrollment.Status.ACTIVE).exists()
    if body == TRIGGERS["placeholder-text"]:  # renders, as written
        assert [m.status for m in broken_messages] == [Message.Status.QUEUED] * 2
        assert all("JINJASEGMENT7X" in m.text for m in broken_messages)
        return
    assert [m.status for m in broken_messages] == [Message.Status.FAILED] * 2
    for message in broken_messages:
        assert message.last_error.startswith("Rendering failed: ")
        assert "nested too deeply" in message.last_error or "truncate" in message.last_error


def test_too_deep_is_reported_at_the_first_line_that_nests_too_deeply():
    nots = "{{ " + "not " * 60 + "city }}"
    brackets = "{{ " + "(" * 30 + "city" + ")" * 30 + " }}"
    for source in (f"Hi\n{nots}\n{nots}", f"Hi\n{brackets}\n{brackets}"):
        assert [(p.line, p.message) for p in rendering.template_problems(source)] == [
            (2, rendering.TOO_DEEP)
        ]


def test_the_environments_do_not_run_jinjas_constant_folding_optimiser():
    """Jinja's optimiser tries every sub-expression at every level: cubic in a chain's length.
    Measured on this code's first version: 14 s of a web worker's CPU to check 60,000
    characters of 45-filter chains (a body is compiled three times: ~40 s), 0.8 s without it.
    Speed belongs to benchmarks; this keeps the switch that made the difference."""
    assert rendering.HTML_ENV.optimized is False
    assert rendering.TEXT_ENV.optimized is False
    line = "{{ first_name" + "|trim" * 45 + " }}\n"
    assert rendering.template_problems(line * 20) == []
