"""Known vulnerabilities in the locked dependency sets, found by pip-audit (`make audit`).

Usage: python .ci/audit.py LOCK...   (requirements.lock images/requirements.lock)

pip-audit looks up each pinned release in the vulnerability records PyPI publishes. Exit 0:
every release was looked up and none has a known vulnerability with a fix. Exit 1: some
release has one (named with the release that fixes it): bump it (docs/*/operator.md, patch
procedure). Exit 2: some releases could not be looked up, so there is no verdict.
A vulnerability without a fix does not fail the audit; .ci/audit-ignore.txt records the
assessment of each, and one listed there that gains a fix fails like any other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

IGNORE = Path(__file__).with_name("audit-ignore.txt")


@dataclass
class Verdict:
    fixable: list[str] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    audited: int = 0
    seen: set[str] = field(default_factory=set)

    @property
    def code(self) -> int:
        return 1 if self.fixable else 2 if self.not_audited else 0


def read_ignore(text: str) -> dict[str, str]:
    """``ID  # why it is accepted`` per line; an entry without its reason is an error."""
    accepted = {}
    for number, line in enumerate(text.splitlines(), 1):
        entry, _, why = line.partition("#")
        if not entry.strip():
            continue
        if not why.strip():
            raise SystemExit(f"{IGNORE.name}:{number}: {entry.strip()} needs '# why' after it")
        accepted[entry.strip()] = why.strip()
    return accepted


def judge(report: dict, accepted: dict[str, str]) -> Verdict:
    """Sorts pip-audit's JSON report (``-f json``) into what fails and what is reported."""
    verdict = Verdict()
    for dep in report["dependencies"]:
        if "skip_reason" in dep:  # pip-audit could not look the release up
            verdict.not_audited.append(dep["skip_reason"])
            continue
        release = f"{dep['name']}=={dep['version']}"
        verdict.audited += 1
        for vuln in dep["vulns"]:
            ids = [vuln["id"], *vuln.get("aliases", [])]
            verdict.seen.update(ids)
            known = next((accepted[i] for i in ids if i in accepted), None)
            name = f"{release} {' '.join(ids)}"
            if vuln["fix_versions"]:
                verdict.fixable.append(f"{name}: fixed in {', '.join(vuln['fix_versions'])}")
            elif known is not None:
                verdict.accepted.append(f"{name}: no fix; accepted: {known}")
            else:
                verdict.unfixed.append(f"{name}: no fix; assess it and record it in {IGNORE}")
    return verdict


def audit(lock: str) -> dict:
    """pip-audit's report on the pinned releases of one lock (no resolution: they are all
    pinned with hashes); when pip-audit fails, a report of releases not looked up."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--requirement", lock]
        command += ["--format", "json", "--output", str(out), "--progress-spinner", "off"]
        done = subprocess.run(command, capture_output=True, text=True)
        if out.exists():
            return json.loads(out.read_text())
    print(done.stderr, file=sys.stderr)
    failed = f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-200:]}"
    return {"dependencies": [{"name": lock, "skip_reason": failed}]}


def main(locks: list[str]) -> int:
    accepted = read_ignore(IGNORE.read_text()) if IGNORE.exists() else {}
    code, seen = 0, set()
    for lock in locks:
        verdict = judge(audit(lock), accepted)
        seen |= verdict.seen
        total = verdict.audited + len(verdict.not_audited)
        print(f"{lock}: {verdict.audited} of {total} releases audited")
        for kind in ("fixable", "unfixed", "accepted"):
            for line in getattr(verdict, kind):
                print(f"  {kind}: {line}")
        if verdict.not_audited:
            print(f"  not audited ({len(verdict.not_audited)}), e.g. {verdict.not_audited[0]}")
        if not verdict.audited:
            print("  no release could be looked up: no verdict (does this machine reach the")
            print("  vulnerability records? pip-audit's -s option names the services)")
        code = 1 if 1 in (code, verdict.code) else max(code, verdict.code)
    for stale in sorted(set(accepted) - seen):
        print(f"{IGNORE.name}: {stale} is no longer reported by any audited release: remove it")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
