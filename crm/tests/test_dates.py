"""crm.dates writes what Django's `date`, `naturalday` and `naturaltime` filters write."""

import datetime
import random

import pytest
from django.contrib.humanize.templatetags import humanize
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation

from crm.dates import day_and_time, day_label, natural_day, natural_time

NOW = datetime.datetime(2026, 11, 26, 4, 30, 17, 811628, tzinfo=datetime.UTC)


def _moments(count: int = 400) -> list[datetime.datetime]:
    """From a few seconds to six years before NOW, a few in the future, and month ends."""
    rng = random.Random(7)
    moments = [
        NOW - datetime.timedelta(seconds=rng.randint(0, 6 * 365 * 86400)) for _ in range(count)
    ]
    moments += [NOW + datetime.timedelta(seconds=rng.randint(1, 90 * 86400)) for _ in range(20)]
    moments += [
        NOW - datetime.timedelta(days=1),
        NOW - datetime.timedelta(days=1, seconds=1),
        NOW - datetime.timedelta(hours=23, minutes=59),
        NOW - datetime.timedelta(days=365),
        NOW - datetime.timedelta(days=366),
        datetime.datetime(2024, 2, 29, 23, 59, tzinfo=datetime.UTC),
        datetime.datetime(2026, 10, 31, 5, 0, tzinfo=datetime.UTC),
        datetime.datetime(2026, 8, 31, 4, 30, 17, tzinfo=datetime.UTC),
        NOW,
    ]
    return moments


@pytest.fixture
def frozen_clock(monkeypatch):
    """humanize's filters read datetime.now(): pin it to NOW (as Django's own tests do)."""

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW.astimezone(tz) if tz else NOW.replace(tzinfo=None)

    monkeypatch.setattr(humanize, "datetime", FrozenDatetime)
    monkeypatch.setattr("crm.dates._now", FrozenDatetime.now)


@pytest.mark.parametrize("language", ["en", "de", "fr"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_dates_match_the_template_filters(frozen_clock, language, zone):
    with translation.override(language), timezone.override(zone):
        for moment in _moments():
            local = timezone.template_localtime(moment)
            assert day_label(local) == date_filter(local, "j M Y")
            assert day_and_time(local) == date_filter(local, "j M Y, H:i")
            assert local.isoformat() == date_filter(local, "c")
            assert natural_day(local) == humanize.naturalday(local, "j M Y")
            assert natural_time(moment, NOW) == humanize.naturaltime(moment)


def test_natural_time_counts_from_the_given_moment(frozen_clock):
    moment = NOW - datetime.timedelta(days=40, hours=3)
    assert natural_time(moment, NOW) == "1\xa0month, 1\xa0week ago"
    assert natural_time(moment, NOW + datetime.timedelta(days=30)) == "2\xa0months, 1\xa0week ago"
