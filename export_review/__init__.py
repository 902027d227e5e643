"""Export review: disclosure checks, DP releases, provider review, signed release bundles."""
