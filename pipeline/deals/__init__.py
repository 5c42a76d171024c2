"""The B2B sales pipeline: stage gates, intent, grading and coaching (pure, no Faust)."""
