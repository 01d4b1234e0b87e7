from datetime import date

import pytest
from django import forms
from django.utils import timezone

from pipelines.forms import DateAheadField

TODAY = date(2026, 11, 27)


class DayForm(forms.Form):
    day = DateAheadField()


@pytest.fixture
def clock(monkeypatch):
    """Pin today's date; `clock(day)` moves it."""

    def set_today(day: date) -> None:
        monkeypatch.setattr(timezone, "localdate", lambda: day)

    set_today(TODAY)
    return set_today


def test_date_ahead_field_renders_the_latest_date_as_max(clock):
    first = str(DayForm()["day"])
    clock(date(2026, 11, 28))
    next_day = str(DayForm()["day"])

    assert first == '<input type="date" name="day" max="2031-11-27" required id="id_day">'
    assert next_day == '<input type="date" name="day" max="2031-11-28" required id="id_day">'


def test_date_ahead_field_accepts_the_last_allowed_day(clock):
    form = DayForm({"day": "2031-11-27"})

    assert form.is_valid()
    assert form.cleaned_data["day"] == date(2031, 11, 27)


def test_date_ahead_field_refuses_a_date_beyond(clock):
    form = DayForm({"day": "2031-11-28"})

    assert not form.is_valid()
    assert form.errors == {"day": ["Choose a date within 5 years (by 27 Nov 2031)."]}
