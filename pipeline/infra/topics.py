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
HEALTH_TICKS = "health.ticks"  # internal: watermark per partition, timer -> customer agent
NOTE_TAGS = "note.tags"
CUSTOMER_TAGS = "customer.tags"
RECOMMENDATIONS = "recommendations"
OPPORTUNITY_DECISIONS = "opportunity.decisions"  # answers to stage requests, keyed by opportunity
DEAL_PUSHES = "deal.pushes"
RECO_REQUESTS = "reco.requests"  # internal: customer side -> store side (re-keyed by store)

RESULT_TOPICS: tuple[str, ...] = (
    ACCEPTED,
    PROFILES,
    DEADLETTER,
    HEALTH,
    HEALTH_HISTORY,
    ALERTS,
    DELIVERIES,
    NOTE_TAGS,
    CUSTOMER_TAGS,
    RECOMMENDATIONS,
    "deal.products",
    "deal.reps",
    "deal.accounts",
    "deal.contacts",
    "opportunities",
    OPPORTUNITY_DECISIONS,
    "deal.activities",
    DEAL_PUSHES,
    "deal.top3",
    "money.estimates",
    "money.match",
)
SOURCE_TOPICS: tuple[str, ...] = EVENT_TOPICS
INTERNAL_TOPICS: tuple[str, ...] = (HEALTH_TICKS, RECO_REQUESTS)
ALL_TOPICS: tuple[str, ...] = SOURCE_TOPICS + RESULT_TOPICS + INTERNAL_TOPICS
