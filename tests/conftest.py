"""Settings every test runs under: the test environment and a throwaway data directory."""

from __future__ import annotations

import os
import tempfile

os.environ["SANDBOX_ENVIRONMENT"] = "test"
os.environ.setdefault("SANDBOX_DATA_DIR", tempfile.mkdtemp(prefix="sandbox-test-"))
