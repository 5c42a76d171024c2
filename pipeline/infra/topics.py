"""Topic names shared by agents, the sink and the tools."""

from __future__ import annotations

from schemas.events import EVENT_TOPICS
from schemas.results import RESULT_TABLES

ACCEPTED = "events.accepted"
PROFILES = "customer.profiles"
DEADLETTER = "salespulse.deadletter"
HEALTH = "customer.health"
HEALTH_HISTORY = "customer.health.history"
ALERTS = "alerts"
DELIVERIES = "alert.deliveries"
HEALTH_TICKS = "health.ticks"  # internal: watermark per partition, timer -> customer agent
NOTE_TAGS = "note.tags"
CUSTOMER_TAGS = "customer.tags"
RECOMMENDATIONS = "recommendations"
OPPORTUNITY_DECISIONS = "opportunity.decisions"  # answers to stage requests, keyed by opportunity
DEAL_PUSHES = "deal.pushes"
RECO_REQUESTS = "reco.requests"  # internal: customer side -> store side (re-keyed by store)

RESULT_TOPICS: tuple[str, ...] = tuple(RESULT_TABLES)  # every topic the sink stores (six money topics were missed)
SOURCE_TOPICS: tuple[str, ...] = EVENT_TOPICS
INTERNAL_TOPICS: tuple[str, ...] = (HEALTH_TICKS, RECO_REQUESTS)
ALL_TOPICS: tuple[str, ...] = SOURCE_TOPICS + RESULT_TOPICS + INTERNAL_TOPICS
