"""The Python widget renderer writes exactly what Django's widget templates write."""

import datetime

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from candidates.filters import CandidateFilterSet
from candidates.tests.factories import CustomFieldFactory
from crm.renderers import WidgetRenderer


class Everything(forms.Form):
    text = forms.CharField(help_text="Help", widget=forms.TextInput(attrs={"placeholder": 'a "b"'}))
    email = forms.EmailField(required=False)
    number = forms.IntegerField(required=False)
    decimal = forms.DecimalField(required=False, localize=True)
    url = forms.URLField(required=False, assume_scheme="https")
    password = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)
    hidden = forms.CharField(widget=forms.HiddenInput, required=False)
    search = forms.CharField(widget=forms.TextInput(attrs={"type": "search", "autofocus": True}))
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False)
    moment = forms.DateTimeField(required=False)
    clock = forms.TimeField(required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "disabled": False}))
    agree = forms.BooleanField(required=False)
    choice = forms.ChoiceField(
        choices=[("", "—"), ("a", "A & co"), (1, 2), ("safe", mark_safe("<b>bold</b>"))]
    )
    grouped = forms.ChoiceField(
        choices=[("Fruit", [("apple", "Apple"), ("pear", "Pear")]), ("x", gettext_lazy("Other"))],
        required=False,
    )
    many = forms.MultipleChoiceField(
        choices=[("a", "A"), ("b", "<B>")], widget=forms.SelectMultiple, required=False
    )
    boxes = forms.MultipleChoiceField(
        choices=[("Group", [("g1", "G1")]), ("a", "A"), ("b", "B")],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        required=False,
    )
    radio = forms.ChoiceField(
        choices=[("y", "Yes"), ("n", "No")], widget=forms.RadioSelect, required=False
    )
    maybe = forms.NullBooleanField(required=False)
    upload = forms.FileField(required=False)
    split = forms.SplitDateTimeField(required=False)


DATA = {
    "text": '<script>alert("x")</script>',
    "email": "a@b.example",
    "number": "12000",
    "decimal": "1234.5",
    "password": "s3cret&",
    "hidden": "h'1",
    "search": "",
    "day": "2026-11-26",
    "moment": "2026-11-26 10:00",
    "body": "line 1\n<line 2>",
    "agree": "on",
    "choice": "a",
    "grouped": "pear",
    "many": ["a", "b"],
    "boxes": ["g1", "b"],
    "radio": "n",
    "maybe": "true",
    "split_0": "2026-11-26",
    "split_1": "10:00",
}
INITIAL = {"number": 1000, "day": datetime.date(2026, 1, 2), "choice": 1, "boxes": ["a"]}


def _html_of_every_widget(form) -> list[str]:
    html = []
    for field in form:
        html.append(str(field))
        html.append(field.as_widget(attrs={"class": "extra", "aria-invalid": "true"}))
        html.extend(subwidget.tag() for subwidget in field.subwidgets)
        html.extend(str(subwidget) for subwidget in field.subwidgets)
    return html


@pytest.mark.parametrize(
    "kwargs", [{}, {"data": DATA}, {"data": {"choice": "nope"}}, {"initial": INITIAL}]
)
def test_widget_renderer_matches_the_templates_for_every_stock_widget(kwargs):
    templates = _html_of_every_widget(Everything(renderer=DjangoTemplates(), **kwargs))
    python = _html_of_every_widget(Everything(renderer=WidgetRenderer(), **kwargs))
    assert python == templates


def test_widget_renderer_matches_the_templates_for_the_candidate_filters(org, in_org):
    CustomFieldFactory(
        organization=org, key="visa", label="Visa", field_type="choice", choices=["yes", "no"]
    )
    CustomFieldFactory(organization=org, key="years", label="Years", field_type="number")
    data = {
        "skills": "python",
        "status": ["active", "hired"],
        "owner": "unassigned",
        "cf_visa": "yes",
        "cf_years_min": "3",
        "created_after": "2026-01-01",
    }
    for bound in (None, data):
        with in_org():
            python = CandidateFilterSet(bound, organization=org).form
            templates = CandidateFilterSet(bound, organization=org).form
            templates.renderer = DjangoTemplates()
            assert _html_of_every_widget(python) == _html_of_every_widget(templates)
            assert str(python) == str(templates)


def test_widget_renderer_is_the_form_renderer():
    assert isinstance(Everything().renderer, WidgetRenderer)


def test_widget_renderer_uses_the_template_for_an_unknown_option_template():
    class Fancy(forms.Select):
        option_template_name = "django/forms/widgets/attrs.html"

    class Form(forms.Form):
        pick = forms.ChoiceField(choices=[("a", "A")], widget=Fancy)

    python = str(Form(renderer=WidgetRenderer())["pick"])
    assert python == str(Form(renderer=DjangoTemplates())["pick"])
    assert "<option" not in python
