"""The sandbox: validation at save time, harmless rendering, escaping, Markdown, plain text."""

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled
from jinja2.exceptions import TemplateError

from campaigns.models import EmailSettings, Message
from campaigns.services import rendering
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.templates import email_template_create
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.tests.factories import CustomFieldFactory

ATTACKS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ settings.SECRET_KEY }}",
    "{% include 'base.html' %}",
    "{% import 'macros.html' as m %}",
    "{% from 'x.html' import y %}",
    "{% extends 'base.html' %}",
    "{% macro evil() %}{% endmacro %}",
    "{{ first_name.__class__.__base__.__subclasses__() }}",
    "{{ lipsum.__globals__ }}",
    "{{ range(10**9) }}",
    "{% autoescape false %}{{ first_name }}{% endautoescape %}",
    "{{ first_name|safe }}",
    "{{ recruiter|attr('__class__') }}",
    "{{ 'x' * 1000000000 }}",
    "{{ recruiter.password }}",
    "{{ request }}",
]


@pytest.mark.parametrize("source", ATTACKS)
def test_template_injection_is_rejected_at_save(source):
    problems = rendering.template_problems(f"Hello\n{source}")
    assert problems != []
    assert problems[0].line == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ settings.SECRET_KEY }}",
        "{{ first_name.__class__ }}",
    ],
)
def test_template_injection_is_harmless_at_render(source, settings):
    # Suppose one slipped past validation: the sandbox still gives nothing away.
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    context = rendering.sample_context()
    try:
        output = rendering.email_render(compiled, context).html_body
    except TemplateError:  # SecurityError or UndefinedError: refused, nothing rendered
        output = ""
    assert settings.SECRET_KEY not in output
    assert "<class" not in output
    assert "function" not in output


@pytest.mark.parametrize("source", ["{% include 'x' %}", "{% import 'x' as y %}"])
def test_template_include_and_import_cannot_load_anything_at_render(source):
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    with pytest.raises(Exception) as raised:
        rendering.email_render(compiled, rendering.sample_context())
    assert "TemplateNotFound" in type(raised.value).__name__ or "loader" in str(raised.value)


def test_template_problems_report_line_and_name():
    problems = rendering.template_problems(
        "Hi {{ first_name }}\n\n{{ favourite_colour }}\n{{ first_name|shout }}"
    )
    assert [(p.line, p.message) for p in problems] == [
        (3, "Unknown merge field “favourite_colour”."),
        (
            4,
            "The filter “shout” is not allowed. Allowed: capitalize, default, first, join, last, "
            "length, lower, replace, title, trim, truncate, upper, wordcount.",
        ),
    ]


def test_template_syntax_error_is_reported_at_its_line():
    problems = rendering.template_problems("One\nTwo {{ first_name \nThree")
    assert len(problems) == 1
    assert problems[0].line in (2, 3)


def test_template_declared_fields_loops_and_custom_fields_are_accepted():
    source = (
        '{{ first_name|default("there") }} {{ recruiter.name }} {{ recruiter.title|upper }}\n'
        "{% for skill in skills %}{{ loop.index }}. {{ skill|title }}{% endfor %}\n"
        "{% if city %}in {{ city }}{% endif %} {{ custom.notice_period }} {{ skills[0] }}"
    )
    assert rendering.template_problems(source, custom_keys=["notice_period"]) == []


def test_template_unknown_custom_field_is_rejected():
    problems = rendering.template_problems("{{ custom.salary }}", custom_keys=["notice_period"])
    assert [p.message for p in problems] == ["Unknown custom field “salary”."]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ candidate.first_name }}",
            "Unknown merge field “candidate”. Write {{ first_name }} instead.",
        ),
        ("{{ frist_name }}", "Unknown merge field “frist_name”. Did you mean “first_name”?"),
        ("{{ contact.phone }}", "Unknown merge field “contact”."),
    ],
)
def test_unknown_fields_are_named_with_a_way_out(source, message):
    assert [p.message for p in rendering.template_problems(source)] == [message]


def test_render_escapes_candidate_values_in_html_but_not_in_text():
    compiled = rendering.email_compile(
        subject="Hi {{ first_name }}", preheader="", body_markdown="Hello **{{ first_name }}**"
    )
    context = {**rendering.sample_context(), "first_name": '<script>alert("x")</script>'}
    rendered = rendering.email_render(compiled, context)
    assert "<script>" not in rendered.html_body
    assert "&lt;script&gt;" in rendered.html_body
    assert "<strong>" in rendered.html_body
    assert rendered.text_body == 'Hello <script>alert("x")</script>\n'
    assert rendered.subject == 'Hi <script>alert("x")</script>'


def test_text_part_is_the_markdown_written_as_plain_text():
    source = (
        "Hi {{ first_name }},\n\n"
        "We have **new roles** in _{{ city }}_: see [open roles](https://acme.example/jobs?a=1)"
        " or <https://acme.example>.\n\n"
        "- one\n- [preferences]({{ preferences_url }})\n  1. nested\n\n"
        "> quoted *words*\n\n"
        "| Role | City |\n|---|---|\n| Backend | Berlin |\n\n"
        "Write to [me](mailto:ana@acme.example).\n{{ recruiter.name }}"
    )
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown=source)
    context = {**rendering.sample_context(), "first_name": "**Ada** [x](y)", "city": "Leeds"}

    text = rendering.email_render(compiled, context).text_body

    preferences = context["preferences_url"]
    assert text == (
        "Hi **Ada** [x](y),\n\n"  # the candidate's value is never Markdown
        "We have new roles in Leeds: see open roles (https://acme.example/jobs?a=1)"
        " or https://acme.example.\n\n"
        f"- one\n- preferences ({preferences})\n  1. nested\n\n"
        "> quoted words\n\n"
        "Role | City\nBackend | Berlin\n\n"
        f"Write to me (ana@acme.example).\n{context['recruiter']['name']}\n"
    )


def test_text_part_falls_back_to_the_source_when_a_jinja_tag_would_be_lost():
    # A tag inside a link's title has no place in the text: the source is used as it is.
    source = '[a](https://acme.example "{{ first_name }}") and \\{\\{ b }}'
    assert rendering.markdown_to_text_source(source) == source
    assert rendering.markdown_to_text_source("\\{\\{ b }}") == "\\{\\{ b }}"


def test_render_candidate_markdown_is_not_interpreted():
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown="{{ first_name }}")
    context = {**rendering.sample_context(), "first_name": "[click](javascript:alert(1)) **b**"}
    html = rendering.email_render(compiled, context).html_body
    assert "<a" not in html
    assert "<strong>" not in html


def test_render_markdown_keeps_jinja_strings_and_links_intact():
    compiled = rendering.email_compile(
        subject="s",
        preheader="",
        body_markdown='Hi {{ first_name|default("there") }}, see [prefs]({{ preferences_url }})',
    )
    context = {**rendering.sample_context()}
    del context["first_name"]  # an empty value is left out of the context: undefined
    html = rendering.email_render(compiled, context).html_body
    assert "Hi there" in html
    assert '<a href="https://example.com/e/p/sample/">prefs</a>' in html


def test_render_recruiter_writes_raw_html_as_text():
    compiled = rendering.email_compile(subject="s", preheader="", body_markdown="<b>bold</b>")
    html = rendering.email_render(compiled, rendering.sample_context()).html_body
    assert "<b>" not in html


def test_template_create_rejects_injection_with_line(org, admin_user, in_org):
    with in_org(), pytest.raises(ValidationError) as raised:
        email_template_create(
            organization=org,
            user=admin_user,
            name="Bad",
            subject="Hi",
            preheader="",
            body_markdown="Line one\n{{ ''.__class__.__mro__ }}",
        )
    assert raised.value.message_dict == {
        "body_markdown": ["Line 2: “__mro__” cannot be used here: only declared fields can."]
    }


def test_merge_context_leaves_empty_values_undefined_so_fallbacks_apply():
    source = rendering.merge_source(
        candidate={"first_name": "", "skills": [], "custom_fields": {"notice": ""}},
        organization=type("Org", (), {"name": "Acme"})(),
        recruiter={"name": "Sam", "title": "", "email": "sam@example.com"},
        links={"unsubscribe_url": "u", "preferences_url": "p"},
    )
    context = rendering.merge_context(source)
    compiled = rendering.email_compile(
        subject="s",
        preheader="",
        body_markdown='{{ first_name|default("there") }}/{{ recruiter.title|default("Recruiter") }}'
        '/{{ custom.notice|default("soon") }}/{{ skills|join(",") }}',
    )
    assert rendering.email_render(compiled, context).text_body == "there/Recruiter/soon/\n"


# --- syntax errors in plain words; names a template sets, where Jinja defines them ---


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("Hi {{ first_name", "Line 1: a merge field is not closed — end it with }}"),
        (
            "Hi\n\n{% if city %}in {{ city }}",
            "Line 3: a {% if %} block is not closed with {% endif %}",
        ),
        (
            "{% for skill in skills %}{{ skill }}",
            "Line 1: a {% for %} block is not closed with {% endfor %}",
        ),
        ("{{ first_name }", "Line 1: a merge field ends with a single } — end it with }}"),
        ("{% endif %}", "Line 1: {% endif %} has no {% if %} before it to close."),
        ("{{ city|default('x' }}", "Line 1: a “(” is not closed: add “)”."),
        (
            "{{ }}",
            "Line 1: a merge field is empty: put a field between {{ and }}, e.g. {{ first_name }}",
        ),
        ("{# note", "Line 1: a comment is not closed — end it with #}"),
        ("{% if city", "Line 1: a tag is not closed — end it with %}"),
    ],
)
def test_template_syntax_errors_are_said_in_plain_words_with_their_line(source, problem):
    assert [str(p) for p in rendering.template_problems(source)] == [problem]


def test_template_syntax_error_not_recognised_keeps_jinjas_words():
    assert rendering.syntax_message("something new and odd") == (
        "the template cannot be read here (something new and odd)."
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ unknown_field }}",
        "{{ unknown_field }}{% set unknown_field = 'x' %}",
        "{% for unknown_field in skills %}{% endfor %}{{ unknown_field }}",
        "{% with unknown_field = city %}{% endwith %}{{ unknown_field }}",
        "{% for skill in skills %}{% set unknown_field = skill %}{% endfor %}{{ unknown_field }}",
    ],
)
def test_template_unknown_field_is_rejected_outside_where_the_template_sets_it(source):
    assert [str(p) for p in rendering.template_problems(source)] == [
        "Line 1: Unknown merge field “unknown_field”."
    ]


def test_template_names_it_sets_are_known_where_jinja_defines_them():
    source = (
        "{% set greeting = first_name|default('there') %}{{ greeting }}\n"
        "{% for skill in skills %}{{ loop.index }} {{ skill }}{% endfor %}\n"
        "{% with place = city %}{{ place }}{% endwith %}\n"
        "{% if city %}{% set where = city %}{% endif %}{{ where }}"
    )
    assert rendering.template_problems(source) == []


@pytest.mark.parametrize(
    "address",
    [
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "www.example.com",  # no scheme: a link that goes nowhere useful
    ],
)
def test_rendered_link_keeps_only_http_https_and_mailto(address):
    compiled = rendering.email_compile(
        subject="s",
        preheader="",
        body_markdown="[site]({{ custom.website }}) ![logo]({{ custom.website }}) "
        "[made](java{{ '' }}script:alert(1)) [ok](https://ok.example/) [mail](mailto:a@b.example)",
    )
    context = {**rendering.sample_context(custom_keys=["website"]), "custom": {"website": address}}

    html = rendering.email_render(compiled, context).html_body

    assert 'href="#">site</a>' in html and '<img src="#" alt="logo"' in html
    assert 'href="#">made</a>' in html
    assert 'href="https://ok.example/">ok</a>' in html
    assert 'href="mailto:a@b.example">mail</a>' in html
    assert "script:" not in html and "data:" not in html


@pytest.mark.parametrize("track_clicks", [True, False])
def test_sent_email_never_carries_a_javascript_link(org, recruiter_user, in_org, track_clicks):
    CustomFieldFactory(organization=org, key="website", label="Website")
    make_candidates(org, 1, custom_fields={"website": "javascript:alert(document.cookie)"})
    campaign = make_broadcast(
        org,
        user=recruiter_user,
        body="[My site]({{ custom.website }}) and [the role](https://jobs.example.com/1)",
    )
    with scopes_disabled():
        EmailSettings.objects.update_or_create(
            organization=org, defaults={"track_clicks": track_clicks}
        )
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.get(campaign=campaign)

    assert message.status == Message.Status.QUEUED
    assert "javascript:" not in message.html
    assert 'href="#">My site</a>' in message.html
    tracked = "https://rapport.example.com/e/c/" if track_clicks else "https://jobs.example.com/1"
    assert f'href="{tracked}' in message.html
