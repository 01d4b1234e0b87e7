import re

from django import forms, template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.filter
def file_size(num_bytes) -> str:
    """Django's `filesizeformat` without a needless “.0”: “10 MB”, “1.5 MB”, “300 bytes”."""
    return re.sub(r"[.,]0(?=\s)", "", filesizeformat(num_bytes))


@register.simple_tag
def bootstrap_widget(field, **extra):
    """Render a bound field's widget with Bootstrap 5 classes and accessible error state."""
    widget = field.field.widget
    if isinstance(widget, forms.CheckboxInput | forms.RadioSelect | forms.CheckboxSelectMultiple):
        css = "form-check-input"
    elif isinstance(widget, forms.Select | forms.SelectMultiple):
        css = "form-select"
    else:
        css = "form-control"
    attrs = {
        "class": " ".join(
            filter(None, [css, widget.attrs.get("class", ""), extra.pop("class", "")])
        )
    }
    # Read out after the label: the errors first, then the help text (which often says what
    # a valid answer is), as includes/form_field.html shows them.
    described_by = []
    if field.errors:
        attrs["class"] += " is-invalid"
        attrs["aria-invalid"] = "true"
        described_by.append(f"{field.auto_id}_errors")
    if field.help_text:
        described_by.append(f"{field.auto_id}_helptext")
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    attrs.update(extra)
    return field.as_widget(attrs=attrs)


@register.simple_tag(takes_context=True)
def querystring_with(context, **changes):
    """The current query string with some parameters replaced (None removes a parameter)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
