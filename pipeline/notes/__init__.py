"""Associate notes: the per-customer tag profile and stock-aware recommendations."""
