"""The form field tag: Bootstrap classes and what a screen reader is told about the field."""

from django import forms

from crm.templatetags.crm_tags import bootstrap_widget


class AgeForm(forms.Form):
    age = forms.IntegerField(max_value=120, help_text="In whole years.")
    nickname = forms.CharField(required=False)


def test_a_field_with_an_error_is_described_by_its_errors_and_its_help_text():
    html = bootstrap_widget(AgeForm({"age": "300"})["age"])

    assert 'class="form-control is-invalid"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_age_errors id_age_helptext"' in html


def test_a_valid_field_is_described_by_its_help_text_only():
    form = AgeForm({"age": "30"})
    assert form.is_valid()

    assert 'aria-describedby="id_age_helptext"' in bootstrap_widget(form["age"])
    assert "aria-describedby" not in bootstrap_widget(form["nickname"])
    assert "aria-invalid" not in bootstrap_widget(form["age"])
