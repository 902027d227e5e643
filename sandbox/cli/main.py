"""``sandbox``: serve the platform, seed the demo, publish, manage agreements, check the record."""

from __future__ import annotations

import typer

from sandbox.cli.agreement import agreement_app
from sandbox.cli.audit import audit_app
from sandbox.cli.backup import register as register_backup
from sandbox.cli.catalog import catalog_app
from sandbox.cli.duties import duties_app
from sandbox.cli.export import export_app
from sandbox.cli.guard import guard_app
from sandbox.cli.keys import keys_app
from sandbox.cli.notify import notify_app
from sandbox.cli.org import org_app
from sandbox.cli.oversight import oversight_app
from sandbox.cli.preview import preview_app
from sandbox.cli.query_worker import register as register_query_worker
from sandbox.cli.release import release_app
from sandbox.cli.rules import rules_app
from sandbox.cli.serve import register as register_serve
from sandbox.cli.statistics import statistics

app = typer.Typer(no_args_is_help=True, help=__doc__)
app.add_typer(catalog_app, name="catalog", help="Publish and list datasets.")
app.add_typer(agreement_app, name="agreement", help="Import, export and manage agreements.")
app.add_typer(guard_app, name="guard", help="Check or run a query against an agreement.")
app.add_typer(export_app, name="export", help="Differentially private releases.")
app.add_typer(
    keys_app, name="keys", help="The key store of data at rest: rotation, encrypting old datasets."
)
app.add_typer(release_app, name="release", help="Verify signed release bundles.")
app.add_typer(audit_app, name="audit", help="Verify, checkpoint and export the audit record.")
app.add_typer(org_app, name="org", help="Organisations, members, real-name identity.")
app.add_typer(notify_app, name="notify", help="Notices of deadlines and decisions.")
app.add_typer(duties_app, name="duties", help="Lifecycle, notices, backups, checkpoint.")
app.add_typer(preview_app, name="preview", help="Synthetic previews of conditional datasets.")
app.add_typer(oversight_app, name="oversight", help="Violations, tip-offs, quality tasks, demands.")
app.add_typer(rules_app, name="rules", help="The register of rules: docs/rules.md.")
register_serve(app)
app.command("statistics")(statistics)
register_query_worker(app)
register_backup(app)
