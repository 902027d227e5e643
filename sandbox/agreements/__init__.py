"""Data-use agreements: the machine-readable policy, its versions and lifecycle (R5, R6, R9)."""
