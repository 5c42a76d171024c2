"""Customer health: features folded from events, scores with reasons, alerts, the churn model."""
