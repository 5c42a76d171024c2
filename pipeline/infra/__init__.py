"""Plumbing: settings, Kafka, ClickHouse, the sink, the Faust app and the serve process."""
