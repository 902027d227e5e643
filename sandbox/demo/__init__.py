"""Synthetic demo catalogue, data and agreements (see ``generate``)."""

from sandbox.demo.generate import (
    DEMO_AGREEMENTS_DIR,
    DEMO_CATALOG_DIR,
    build_demo_catalog,
    generate_demo,
)

__all__ = ["DEMO_AGREEMENTS_DIR", "DEMO_CATALOG_DIR", "build_demo_catalog", "generate_demo"]
