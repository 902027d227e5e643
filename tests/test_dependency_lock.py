"""The locked dependency sets, checked offline (issue 15 item 5).

``requirements.lock`` pins what ``make install`` installs: every dependency of
pyproject.toml (each extra and the build backend included) and everything those need,
nothing else, each release with its hashes; this environment holds exactly those releases.
``images/requirements.lock`` pins images/requirements.txt for the workspace image, and
the built image holds exactly its releases. A dependency added or changed without
``make lock`` fails here, naming what to run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.resources import require_docker, require_workspace_image

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
IMAGE_LOCK = ROOT / "images" / "requirements.lock"
RELOCK = "run `make lock` and commit the lock files"

#: A pinned release: ``name==version \`` then one ``--hash=sha256:…`` line per file.
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\s*\\?")


@dataclass
class Pin:
    name: str
    version: str
    hashes: list[str]


def read_lock(path: Path) -> dict[str, Pin]:
    """The pins of a lock by canonical name; anything but exact pins and hashes is an error."""
    pins: dict[str, Pin] = {}
    pin: Pin | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if (found := _HASH.fullmatch(line)) and pin is not None:
            pin.hashes.append(found[1])
        elif found := _PIN.fullmatch(line):
            pin = Pin(canonicalize_name(found[1]), found[2], [])
            assert pin.name not in pins, f"{path.name}:{number}: {pin.name} pinned twice"
            pins[pin.name] = pin
        else:
            raise AssertionError(f"{path.name}:{number}: not a pin or a hash: {raw!r}")
    return pins


def declared() -> list[Requirement]:
    """What pyproject.toml asks for: the dependencies, every extra, the build backend."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"].values()
    texts = [*project["project"]["dependencies"], *(t for extra in extras for t in extra)]
    return [Requirement(t) for t in (*texts, *project["build-system"]["requires"])]


def _active(requirement: Requirement, extras: set[str]) -> bool:
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": e}) for e in (*extras, ""))


def closure(roots: list[Requirement], pins: dict[str, Pin]) -> tuple[set[str], list[str]]:
    """The pinned names the roots need here, through the installed releases' own
    requirements, and what is wrong on the way (missing from the lock, or a pin outside
    the range asked for)."""
    reached: set[str] = set()
    problems: list[str] = []
    done: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, "pyproject.toml") for r in roots if _active(r, set())]
    while todo:
        requirement, by = todo.pop()
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{requirement} (asked for by {by}) is not pinned")
            continue
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{by} asks for {requirement}, the lock pins {pin.version}")
        reached.add(name)
        extras = {canonicalize_name(e) for e in requirement.extras}
        if (name, frozenset(extras)) in done:
            continue
        done.add((name, frozenset(extras)))
        try:
            needs = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # reported by the environment's test
        todo += [(r, name) for r in map(Requirement, needs) if _active(r, extras)]
    return reached, problems


def test_every_locked_release_is_pinned_with_hashes() -> None:
    for lock in (LOCK, IMAGE_LOCK):
        pins = read_lock(lock)
        assert len(pins) > 50, f"{lock.name} holds only {len(pins)} pins"
        unhashed = [p.name for p in pins.values() if not p.hashes]
        assert not unhashed, f"{lock.name} pins without hashes: {unhashed}"


def test_the_platform_lock_holds_what_pyproject_needs_and_nothing_else() -> None:
    pins = read_lock(LOCK)
    reached, problems = closure(declared(), pins)
    unasked = sorted(set(pins) - reached)
    assert not problems, f"requirements.lock is behind pyproject.toml: {problems}; {RELOCK}"
    assert not unasked, f"requirements.lock pins what nothing needs: {unasked}; {RELOCK}"


def test_this_environment_is_installed_from_the_lock() -> None:
    wrong = []
    for pin in read_lock(LOCK).values():
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = "nothing"
        if installed != pin.version:
            wrong.append(f"{pin.name}: {installed} installed, {pin.version} locked")
    assert not wrong, f"{wrong}; run `make install`"


def image_requirements() -> list[Requirement]:
    lines = (ROOT / "images" / "requirements.txt").read_text().splitlines()
    return [Requirement(t) for line in lines if (t := line.split("#", 1)[0].strip())]


def test_the_image_lock_holds_every_requirement_of_the_image() -> None:
    pins = read_lock(IMAGE_LOCK)
    wrong = []
    for requirement in image_requirements():
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None or not requirement.specifier.contains(pin.version, prereleases=True):
            wrong.append(f"{requirement}: {pin.version if pin else 'not pinned'}")
    behind = "images/requirements.lock is behind images/requirements.txt"
    assert not wrong, f"{behind}: {wrong}; {RELOCK}"


def test_a_dependency_added_without_relocking_is_found() -> None:
    """The check above on pyproject.toml with one more dependency, and one range moved."""
    pins = read_lock(LOCK)
    numpy = pins["numpy"].version
    added = [*declared(), Requirement("left-pad>=1"), Requirement(f"numpy>{numpy}")]
    _, problems = closure(added, pins)
    assert problems == [
        f"pyproject.toml asks for numpy>{numpy}, the lock pins {numpy}",
        "left-pad>=1 (asked for by pyproject.toml) is not pinned",
    ]


@pytest.mark.docker
def test_the_built_image_holds_exactly_the_image_lock() -> None:
    client = require_docker()
    image = require_workspace_image(client)
    lock_digest = hashlib.sha256(IMAGE_LOCK.read_bytes()).hexdigest()
    labels = client.images.get(image).labels
    assert labels.get("sandbox.lock") == lock_digest, f"{image} predates the lock: images/build.sh"
    listing = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = client.containers.run(
        image, ["python", "-c", listing], network_mode="none", remove=True, user="1000:1000"
    )
    installed = {canonicalize_name(n): v for n, v in json.loads(out).items()}
    assert installed.pop("data-sandbox") == metadata.version("data-sandbox")
    assert installed == {p.name: p.version for p in read_lock(IMAGE_LOCK).values()}


def _audit_module():
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_the_audit_fails_on_a_vulnerability_with_a_fix_and_never_passes_unaudited() -> None:
    """.ci/audit.py's verdict on reports in pip-audit's JSON form."""
    audit = _audit_module()
    fixable = {"name": "jinja2", "version": "3.1.2", "vulns": [
        {"id": "GHSA-h5c8-rqwp-cp95", "aliases": ["CVE-2024-22195"], "fix_versions": ["3.1.3"]}
    ]}  # fmt: skip
    unfixed = {"name": "pip", "version": "26.3", "vulns": [
        {"id": "PYSEC-2099-1", "aliases": [], "fix_versions": []}
    ]}  # fmt: skip
    clean = {"name": "six", "version": "1.17.0", "vulns": []}
    skipped = {"name": "uv", "skip_reason": "Dependency not found on PyPI: uv (0.13.10)"}

    def verdict(*deps, accepted=None):
        return audit.judge({"dependencies": list(deps)}, accepted or {})

    assert verdict(clean).code == 0
    found = verdict(fixable, unfixed, clean)
    assert (found.code, found.audited) == (1, 3)
    assert found.fixable == ["jinja2==3.1.2 GHSA-h5c8-rqwp-cp95 CVE-2024-22195: fixed in 3.1.3"]
    assert verdict(unfixed, clean).code == 0  # reported, for the ignore list, not failed
    assert verdict(clean, skipped).code == 2  # no verdict, never a pass
    # Accepting a vulnerability holds only while it has no fix.
    assert verdict(fixable, accepted={"CVE-2024-22195": "…"}).code == 1
    accepted = verdict(unfixed, accepted={"PYSEC-2099-1": "not reachable from our code"})
    assert (accepted.code, accepted.unfixed) == (0, [])
    assert accepted.accepted == [
        "pip==26.3 PYSEC-2099-1: no fix; accepted: not reachable from our code"
    ]
    with pytest.raises(SystemExit, match="needs '# why'"):
        audit.read_ignore("# accepted\nPYSEC-2099-1\n")
