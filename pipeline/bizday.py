"""The business time zone: what "today", a day bucket and a business day mean.

Asia/Shanghai unless the deployment sets ``SALESPULSE_BUSINESS_TIMEZONE``; the worker and
serve set it once at start-up, before any event or request, from the settings.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

_TZ: list[tzinfo] = [ZoneInfo("Asia/Shanghai")]
# Quarter hour since the epoch -> its business day. Every UTC offset in use is a multiple of
# 15 minutes, so midnights and offset changes fall on quarter-hour boundaries and a quarter
# hour lies in one day; the folds ask the business day of an instant about eight times per
# event, and the time-zone conversion was the single costliest line of the health fold.
_DAYS: dict[int, str] = {}
_QUARTER = 900
_KEEP_QUARTERS = 100_000  # about three years of quarter hours


def use_timezone(name: str) -> None:
    _TZ[0] = ZoneInfo(name)
    _DAYS.clear()


def business_tz() -> tzinfo:
    return _TZ[0]


def business_day(ts: datetime) -> str:
    """The business day (ISO date) an aware instant falls in: a purchase at 07:30 in Shanghai
    is that day's, not the previous UTC day's."""
    quarter = math.floor(ts.timestamp()) // _QUARTER
    day = _DAYS.get(quarter)
    if day is None:
        tz = _TZ[0]
        day = ts.astimezone(tz).date().isoformat()
        start = datetime.fromtimestamp(quarter * _QUARTER, UTC)
        end = datetime.fromtimestamp(quarter * _QUARTER + _QUARTER - 1, UTC)
        if start.astimezone(tz).date() == end.astimezone(tz).date():  # a zone whose quarters do split days: no cache
            if len(_DAYS) >= _KEEP_QUARTERS:
                _DAYS.clear()
            _DAYS[quarter] = day
    return day


def day_of_stamp(at: str) -> str:
    """The business day of an ISO time stamp, as rows and states carry event time."""
    return business_day(datetime.fromisoformat(at))
