"""The money side of the B2B book: rebates and three-way matching (pure, no Faust)."""
