"""The form renderer: Django's, with its stock widget templates written in Python.

Django renders every widget through a template, and a `<select>` through one more template
per option (plus the attributes template for each): the candidate list's filter panel was ~150
sub-template renders, ~10 ms of a page. `WidgetRenderer` writes the same markup in Python —
byte for byte (crm/tests/test_renderers.py compares it with Django's templates for every
stock widget). A template name it does not know (a project override, a third-party widget,
`multiwidget.html`) and an option template it does not know render through the templates as
before.
"""

from django.forms.renderers import DjangoTemplates
from django.template import Context
from django.template.base import render_value_in_context
from django.utils.html import escape
from django.utils.safestring import SafeData, mark_safe

WIDGETS = "django/forms/widgets/"
# Template variables render as in a template: localized, then escaped unless already safe.
_CONTEXT = Context(autoescape=True)


class _UseTemplates(Exception):
    """The widget needs a template this module does not write."""


def _text(value) -> str:
    """`{{ value }}`."""
    return render_value_in_context(value, _CONTEXT)


def _string(value) -> str:
    """`{{ value|stringformat:'s' }}` (the filter is marked is_safe)."""
    if isinstance(value, tuple):
        value = str(value)
    try:
        text = "%s" % value  # noqa: UP031 (what the stringformat filter does)
    except (ValueError, TypeError):
        return ""
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html"""
    parts = []
    for name, value in attrs.items():
        if value is not False:
            parts.append(f" {_text(name)}")
            if value is not True:
                parts.append(f'="{_string(value)}"')
    return "".join(parts)


# Each function returns what its template renders, trailing newline included (every stock
# widget template but attrs.html ends with one): an included option keeps it, and the renderer
# strips the outermost result as DjangoTemplates.render does.


def _input(widget: dict) -> str:
    """django/forms/widgets/input.html"""
    value = widget["value"]
    # The template's `widget.value != None`.
    value_attr = f' value="{_string(value)}"' if value != None else ""  # noqa: E711
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
        f"{value_attr}{_attrs(widget['attrs'])}>\n"
    )


def _includes_input(widget: dict) -> str:
    """text.html, date.html, checkbox.html…: `{% include "…/input.html" %}` and a newline."""
    return _input(widget) + "\n"


def _textarea(widget: dict) -> str:
    value = _text(widget["value"]) if widget["value"] else ""
    return (
        f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>\n'
    )


def _select_option(widget: dict) -> str:
    return (
        f'<option value="{_string(widget["value"])}"{_attrs(widget["attrs"])}>'
        f"{_text(widget['label'])}</option>\n"
    )


def _input_option(widget: dict) -> str:
    """django/forms/widgets/input_option.html"""
    if not widget.get("wrap_label"):
        return _input(widget) + "\n"
    option_id = widget["attrs"].get("id")
    label_for = f' for="{_text(option_id)}"' if option_id else ""
    return f"<label{label_for}>{_input(widget)} {_text(widget['label'])}</label>\n"


def _includes_input_option(widget: dict) -> str:
    """checkbox_option.html, radio_option.html."""
    return _input_option(widget) + "\n"


def _option(option: dict) -> str:
    write = OPTIONS.get(option["template_name"])
    if write is None:
        raise _UseTemplates
    return write(option)


def _select(widget: dict) -> str:
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            parts.append(f"\n  {_option(option)}")
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>\n")
    return "".join(parts)


def _multiple_input(widget: dict) -> str:
    """django/forms/widgets/multiple_input.html (checkbox and radio lists)."""
    widget_id = widget["attrs"].get("id")
    css = widget["attrs"].get("class")
    parts = [
        "<div",
        f' id="{_text(widget_id)}"' if widget_id else "",
        f' class="{_text(css)}"' if css else "",
        ">",
    ]
    for group, options, _index in widget["optgroups"]:
        if group:
            parts.append(f"\n  <div><label>{_text(group)}</label>")
        for option in options:
            parts.append(f"<div>\n    {_option(option)}</div>")
        if group:
            parts.append("\n  </div>")
    parts.append("\n</div>\n")
    return "".join(parts)


def _includes_multiple_input(widget: dict) -> str:
    """checkbox_select.html, radio.html."""
    return _multiple_input(widget) + "\n"


OPTIONS = {
    f"{WIDGETS}select_option.html": _select_option,
    f"{WIDGETS}input_option.html": _input_option,
    f"{WIDGETS}checkbox_option.html": _includes_input_option,
    f"{WIDGETS}radio_option.html": _includes_input_option,
}
PYTHON_WIDGETS = {
    f"{WIDGETS}input.html": _input,
    **{
        f"{WIDGETS}{name}.html": _includes_input
        for name in (
            "text",
            "email",
            "url",
            "number",
            "password",
            "search",
            "tel",
            "color",
            "date",
            "datetime",
            "time",
            "hidden",
            "checkbox",
            "file",
        )
    },
    f"{WIDGETS}textarea.html": _textarea,
    f"{WIDGETS}select.html": _select,
    f"{WIDGETS}multiple_input.html": _multiple_input,
    f"{WIDGETS}checkbox_select.html": _includes_multiple_input,
    f"{WIDGETS}radio.html": _includes_multiple_input,
    **OPTIONS,
}


class WidgetRenderer(DjangoTemplates):
    """settings.FORM_RENDERER: stock widgets in Python, everything else from templates."""

    def render(self, template_name, context, request=None):
        write = PYTHON_WIDGETS.get(template_name)
        if write is not None:
            try:
                # As DjangoTemplates.render, stripped; every value is escaped above.
                return mark_safe(write(context["widget"]).strip())  # noqa: S308
            except _UseTemplates:
                pass
        return super().render(template_name, context, request)
