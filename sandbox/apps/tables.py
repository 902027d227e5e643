"""Import every model module so ``Base.metadata`` describes the whole schema
(for Alembic and for ``create_all`` in throwaway databases)."""

from export_review import ledger  # noqa: F401
from export_review import models as export_requests  # noqa: F401
from query_guard.early_warning import models as early_warning  # noqa: F401
from query_guard.service import models as query_service  # noqa: F401
from sandbox.accounts import attempts as sign_in_attempts  # noqa: F401
from sandbox.accounts import models as accounts  # noqa: F401
from sandbox.accounts import pending as pending_sign_ins  # noqa: F401
from sandbox.accounts import totp as totp_factors  # noqa: F401
from sandbox.agreements import models as agreements  # noqa: F401
from sandbox.applications import models as applications  # noqa: F401
from sandbox.audit import filings  # noqa: F401
from sandbox.audit import models as audit  # noqa: F401
from sandbox.catalog import models as catalog  # noqa: F401
from sandbox.db.base import Base
from sandbox.feedback import models as feedback  # noqa: F401
from sandbox.identity import models as identity  # noqa: F401
from sandbox.notifications import models as notifications  # noqa: F401
from sandbox.oversight import models as oversight  # noqa: F401
from sandbox.preview import models as preview  # noqa: F401
from sandbox.provisioning import models as provisioning  # noqa: F401

metadata = Base.metadata
