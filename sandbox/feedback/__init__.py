"""What the public and researchers send back: objections (R10), rights complaints (R11),
usage reports (R8)."""
