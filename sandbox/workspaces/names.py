"""Docker object names derived from agreement ids and researchers.

Names are deterministic so that the hub, the control plane and teardown find the
same objects; a hash suffix keeps two ids that slug alike apart.
"""

from __future__ import annotations

import hashlib
import re

#: Labels put on every network, volume and container the platform creates.
LABEL_AGREEMENT = "sandbox.agreement"
LABEL_RESEARCHER = "sandbox.researcher"
LABEL_ROLE = "sandbox.role"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "x"


def server_name(agreement_id: str) -> str:
    """The JupyterHub named server of an agreement: its id in lower case.

    JupyterHub accepts only lower-case slugs (letters, digits, single hyphens, at most
    30 characters) as server names, so agreement ids must lower-case into one.
    """
    return agreement_id.lower()


def network_name(agreement_id: str) -> str:
    """The agreement's private network, e.g. ``sandbox-agr-2026-0001-1a2b3c4d``."""
    return f"sandbox-{_slug(agreement_id, 40)}-{_digest(agreement_id)[:8]}"


#: Every agreement bridge's name starts so (iptables matches them all as ``sbx+``).
BRIDGE_PREFIX = "sbx"


def bridge_name(agreement_id: str) -> str:
    """The host bridge interface of the agreement's network (at most 15 characters)."""
    return f"{BRIDGE_PREFIX}{_digest(agreement_id)[:12]}"


def home_volume_name(researcher: str, agreement_id: str) -> str:
    """One home volume per (researcher, agreement): files never cross agreements."""
    slug = f"{_slug(researcher, 24)}-{_slug(agreement_id, 30)}"
    return f"sandbox-home-{slug}-{_digest(researcher, agreement_id)[:8]}"


def project_volume_name(agreement_id: str) -> str:
    """The agreement's project volume, shared by its researchers' workspaces."""
    return f"sandbox-project-{_slug(agreement_id, 40)}-{_digest('project', agreement_id)[:8]}"
