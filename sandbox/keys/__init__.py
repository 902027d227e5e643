"""The platform's key store for data at rest: per-agreement data keys wrapped by a master key,
in a directory of their own, apart from the data they open (R13, R16)."""
