"""The sending window on the nights the clocks change: on the autumn night the hour from 01:00
repeats, so an opening in it comes twice and the one that has passed must not be returned; on
the spring night the hour is skipped and an opening in it moves on by that hour."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.services.sequences import window_next_opening

LONDON = ZoneInfo("Europe/London")
EVERY_DAY = list(range(7))


def test_window_in_the_repeated_autumn_hour_opens_at_the_second_time_not_before_the_moment():
    # Sunday 25 October 2026: at 02:00 BST the clocks go back to 01:00 GMT. At 01:01 GMT the
    # 01:38 of summer time (00:38 UTC) has passed; the 01:38 of winter time (01:38 UTC) is next.
    moment = datetime(2026, 10, 25, 1, 1, tzinfo=UTC)
    opening = window_next_opening(
        moment=moment, days=EVERY_DAY, start=time(1, 38), end=time(8, 28), zone=LONDON
    )
    assert opening == datetime(2026, 10, 25, 1, 38, tzinfo=UTC)


def test_window_in_the_repeated_autumn_hour_opens_at_the_first_time_when_it_is_still_to_come():
    # At 00:10 BST (23:10 UTC the day before) the first 01:38 (BST, 00:38 UTC) is next.
    moment = datetime(2026, 10, 24, 23, 10, tzinfo=UTC)
    opening = window_next_opening(
        moment=moment, days=EVERY_DAY, start=time(1, 38), end=time(8, 28), zone=LONDON
    )
    assert opening == datetime(2026, 10, 25, 0, 38, tzinfo=UTC)


def test_window_never_opens_before_the_moment_through_the_autumn_night():
    moment = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    for minute in range(0, 5 * 60, 7):
        now = moment + timedelta(minutes=minute)
        for start in (time(1, 0), time(1, 38), time(1, 59), time(2, 0)):
            opening = window_next_opening(
                moment=now, days=EVERY_DAY, start=start, end=time(9, 0), zone=LONDON
            )
            assert opening >= now, (now, start, opening)


def test_window_opening_in_the_spring_gap_moves_on_by_the_skipped_hour():
    # Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST, so 01:30 does not happen that night;
    # the window opens at 02:30 BST (01:30 UTC), as before.
    moment = datetime(2026, 3, 29, 0, 10, tzinfo=UTC)
    opening = window_next_opening(
        moment=moment, days=EVERY_DAY, start=time(1, 30), end=time(8, 0), zone=LONDON
    )
    assert opening == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
