"""Dates as the templates write them, for the pages that show hundreds (a profile's 200
timeline entries, a list's 50 rows): the same text as Django's `date` and humanize's
`naturalday`/`naturaltime` filters (crm/tests/test_dates.py compares them), without their
per-call cost — a day's label is formatted once per day and language, and the translated
pieces of "3 days, 2 hours ago" once per count.
"""

import datetime
import functools

from django.contrib.humanize.templatetags.humanize import NaturalTimeFormatter, naturalday
from django.utils.dateformat import format as date_format
from django.utils.timesince import timesince
from django.utils.translation import get_language


def _now(tz) -> datetime.datetime:
    return datetime.datetime.now(tz)


@functools.lru_cache(maxsize=4096)
def _day_label(day: datetime.date, language: str | None) -> str:
    return date_format(day, "j M Y")


def day_label(moment: datetime.date) -> str:
    """`{{ moment|date:"j M Y" }}` of a date or a local datetime."""
    day = moment.date() if isinstance(moment, datetime.datetime) else moment
    return _day_label(day, get_language())


def day_and_time(local: datetime.datetime) -> str:
    """`{{ moment|date:"j M Y, H:i" }}` (a `<time title>`); `local` is the datetime in the
    current time zone (`template_localtime`), as the `date` filter sees it. `{{ moment|date:"c"
    }}` is `local.isoformat()`."""
    return f"{day_label(local)}, {local.hour:02d}:{local.minute:02d}"


def natural_day(local: datetime.datetime) -> str:
    """`{{ moment|naturalday:"j M Y" }}`: today, yesterday, tomorrow or the day."""
    today = _now(local.tzinfo).date()
    if abs((local.date() - today).days) <= 1:
        return naturalday(local, "j M Y")
    return day_label(local)


class _Translated:
    """A lazy "%(num)d days"-style string whose translation is formatted once per language
    and count (timesince formats these with `%`)."""

    def __init__(self, lazy):
        self.lazy = lazy
        self.texts: dict = {}

    def __mod__(self, params: dict) -> str:
        key = (get_language(), params["num"])
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = str(self.lazy % params)
        return text


_PAST_UNITS = {
    name: _Translated(text) for name, text in NaturalTimeFormatter.past_substrings.items()
}
_PAST_DAY = NaturalTimeFormatter.time_strings["past-day"]


@functools.lru_cache(maxsize=4096)
def _ago(delta: str, language: str | None) -> str:
    return str(_PAST_DAY % {"delta": delta})


def natural_time(moment: datetime.datetime, now: datetime.datetime) -> str:
    """`{{ moment|naturaltime }}` at `now` (an aware datetime; taken once for a whole page)."""
    if moment < now and (now - moment).days != 0:
        # The common case on a long timeline: "2 months, 1 week ago".
        delta = timesince(moment, now, time_strings=_PAST_UNITS)
        return _ago(delta, get_language())
    return NaturalTimeFormatter.string_for(moment)
