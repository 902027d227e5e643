"""The departments that provide data, shown by their registered full names.

Catalogue entries, agreements and accounts name a provider by its short name; the
operator's register of organisations (``sandbox org add``) holds the registered full
name beside it. A provider the register does not hold is shown by its short name, as an
identifier, so a new department needs no change to the code to be named properly.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.identity.models import Organisation


def registered_names(session: Session) -> dict[str, str]:
    """Each registered organisation's short name -> its registered full name."""
    rows = session.execute(select(Organisation.name, Organisation.legal_name))
    return {name: full_name for name, full_name in rows}
