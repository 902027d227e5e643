"""A second factor at the identity provider, as its ID token states it (RFC 8176 ``amr``,
OpenID Connect Core §2 ``acr``).

An account that signs in with a second factor on the platform (providers, operators, the
authority, researchers when so configured or enrolled; sandbox/accounts/second_factor.py)
must not get in through the provider on a password alone: the ID token's ``amr`` must name
a method in ``SANDBOX_OIDC_MFA_AMR``, and when ``SANDBOX_OIDC_MFA_ACR`` is set its ``acr``
must be one of those values too. A provider that says nothing is taken to have checked
nothing.
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import PolicyViolation
from sandbox.settings import Settings

ARTICLE = "Rizhao Art.29 (R13)"


def check_second_factor_claims(claims: dict[str, Any], settings: Settings) -> None:
    """Refuse (``oidc-mfa``, ``oidc-acr``) unless the claims show a second factor."""
    amr = claims.get("amr")
    methods = {m for m in amr if isinstance(m, str)} if isinstance(amr, list) else set()
    if not methods & set(settings.oidc_mfa_amr):
        raise PolicyViolation(
            "oidc-mfa",
            ARTICLE,
            "this account signs in with a second factor, and the identity provider did not "
            f"report one (amr {sorted(methods) or 'absent'}; accepted: "
            f"{', '.join(settings.oidc_mfa_amr)}): sign in at the provider with your second "
            "factor, or with your platform password and authenticator",
        )
    if settings.oidc_mfa_acr and claims.get("acr") not in settings.oidc_mfa_acr:
        raise PolicyViolation(
            "oidc-acr",
            ARTICLE,
            f"the identity provider's assurance level (acr {claims.get('acr')!r}) is below "
            f"what this account needs ({', '.join(settings.oidc_mfa_acr)})",
        )
