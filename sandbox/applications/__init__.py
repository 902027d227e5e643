"""Applications for conditional data and their review (R3, R4)."""
