"""Kafka client security from the settings, in the form each client library takes.

One place, so every client (Faust, aiokafka, kafka-python) connects the same way: in
production SASL/SCRAM (over TLS where the network is not private); the password only
ever comes from the environment.
"""

from __future__ import annotations

import ssl
from typing import Any

from pipeline.infra.settings import Settings


def _context(s: Settings) -> ssl.SSLContext | None:
    if not s.kafka_security_protocol.endswith("SSL"):
        return None
    return ssl.create_default_context(cafile=s.kafka_ssl_cafile or None)


def client_kwargs(s: Settings) -> dict[str, Any]:
    """For aiokafka's and kafka-python's clients alike (they share these argument names)."""
    out: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_security_protocol.startswith("SASL"):
        out |= {
            "sasl_mechanism": s.kafka_sasl_mechanism,
            "sasl_plain_username": s.kafka_username,
            "sasl_plain_password": s.kafka_password,
        }
    context = _context(s)
    if context is not None:
        out["ssl_context"] = context
    return out


def faust_credentials(s: Settings) -> Any:
    """``broker_credentials`` for ``faust.App`` (None: plaintext, no authentication)."""
    import faust

    if s.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=s.kafka_username,
            password=s.kafka_password,
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=_context(s),
        )
    if s.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(_context(s))
    return None
