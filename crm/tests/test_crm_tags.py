"""The form field tag: Bootstrap classes and what a screen reader is told about the field; file
sizes."""

import pytest
from django import forms

from crm.templatetags.crm_tags import bootstrap_widget, file_size


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


@pytest.mark.parametrize(
    ("num_bytes", "shown"),
    [
        (10 * 1024 * 1024, "10\xa0MB"),
        (1536 * 1024, "1.5\xa0MB"),
        (100 * 1024, "100\xa0KB"),
        (300, "300\xa0bytes"),
        (1, "1\xa0byte"),
    ],
)
def test_file_size_drops_a_needless_decimal(num_bytes, shown):
    assert file_size(num_bytes) == shown
