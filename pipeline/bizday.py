"""The business time zone: what "today", a day bucket and a business day mean.

Asia/Shanghai unless the deployment sets ``SALESPULSE_BUSINESS_TIMEZONE``; the worker and
serve set it once at start-up, before any event or request, from the settings.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

_TZ: list[tzinfo] = [ZoneInfo("Asia/Shanghai")]


def use_timezone(name: str) -> None:
    _TZ[0] = ZoneInfo(name)


def business_tz() -> tzinfo:
    return _TZ[0]
