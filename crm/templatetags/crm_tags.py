from django import forms, template

register = template.Library()


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
    if field.errors:
        attrs["class"] += " is-invalid"
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{field.auto_id}_errors"
    elif field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}_helptext"
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
