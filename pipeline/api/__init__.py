"""The read API and the web console, served by `salespulse serve` (it owns the store)."""
