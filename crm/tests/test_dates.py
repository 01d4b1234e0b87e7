"""crm.dates writes what Django's `date`, `naturalday` and `naturaltime` filters write."""

import datetime
import random

import pytest
from django.contrib.humanize.templatetags import humanize
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation

from crm.dates import PageClock

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


@pytest.mark.parametrize("language", ["en", "de", "fr"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_dates_match_the_template_filters(frozen_clock, language, zone):
    with translation.override(language), timezone.override(zone):
        clock = PageClock(NOW)
        for moment in _moments():
            local = clock.local(moment)
            assert local == timezone.template_localtime(moment)
            assert local.utcoffset() == timezone.template_localtime(moment).utcoffset()
            assert clock.day_label(local) == date_filter(local, "j M Y")
            assert clock.day_and_time(local) == date_filter(local, "j M Y, H:i")
            assert local.isoformat() == date_filter(local, "c")
            assert clock.natural_day(local) == humanize.naturalday(local, "j M Y")
            assert clock.natural_time(moment) == humanize.naturaltime(moment)


def test_a_clock_keeps_the_language_and_zone_it_was_made_in(frozen_clock):
    """A page is written in one language and zone: the clock reads them once."""
    moment, march = NOW - datetime.timedelta(days=3), datetime.date(2026, 3, 11)
    with translation.override("de"), timezone.override("Europe/Berlin"):
        clock = PageClock(NOW)
        german = humanize.naturaltime(moment), date_filter(march, "j M Y")
    assert german == ("3\xa0Tage her", "11 Mär 2026")
    assert (clock.natural_time(moment), clock.day_label(march)) == german
    assert clock.local(moment).isoformat() == "2026-11-23T05:30:17.811628+01:00"


def test_natural_time_counts_from_the_clocks_moment(frozen_clock):
    moment = NOW - datetime.timedelta(days=40, hours=3)
    assert PageClock(NOW).natural_time(moment) == "1\xa0month, 1\xa0week ago"
    later = PageClock(NOW + datetime.timedelta(days=30))
    assert later.natural_time(moment) == "2\xa0months, 1\xa0week ago"
