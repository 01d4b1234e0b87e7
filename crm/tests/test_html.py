"""crm.html.escape returns what Django's conditional_escape returns."""

from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from crm.html import escape


def test_escape_matches_conditional_escape():
    values = [
        "<script>alert('x') & \"y\"</script>",
        mark_safe("<b>safe</b>"),
        "plain",
        "",
        42,
        None,
        gettext_lazy("Email & phone"),
        mark_safe(gettext_lazy("<i>lazy safe</i>")),  # noqa: S308
    ]
    for value in values:
        assert escape(value) == conditional_escape(value)
    assert escape("<") == "&lt;"
