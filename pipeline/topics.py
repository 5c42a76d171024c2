"""Topic names shared by agents, the sink and the tools."""

from __future__ import annotations

from schemas.events import EVENT_TOPICS

ACCEPTED = "events.accepted"
PROFILES = "customer.profiles"
DEADLETTER = "salespulse.deadletter"
HEALTH = "customer.health"
HEALTH_HISTORY = "customer.health.history"
ALERTS = "alerts"
DELIVERIES = "alert.deliveries"
HEALTH_TICKS = "health.ticks"  # internal: watermark timer -> health agent

RESULT_TOPICS: tuple[str, ...] = (ACCEPTED, PROFILES, DEADLETTER, HEALTH, HEALTH_HISTORY, ALERTS, DELIVERIES)
SOURCE_TOPICS: tuple[str, ...] = EVENT_TOPICS
INTERNAL_TOPICS: tuple[str, ...] = (HEALTH_TICKS,)
ALL_TOPICS: tuple[str, ...] = SOURCE_TOPICS + RESULT_TOPICS + INTERNAL_TOPICS
