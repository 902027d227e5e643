"""The development workspace's project folder (issue 13, item 3): the researchers of one
agreement share it as ``project`` beside their own files, another agreement's workspace
does not see it, and it is removed with the agreement's last home, as an ended
agreement's volumes are (R16)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from hub_config.dev_workspace import LAB_CSS, PROJECT, DevWorkspaceSpawner


def spawner(state: Path, username: str, name: str) -> DevWorkspaceSpawner:
    """The spawner as the hub makes it for ``username``'s server ``name`` (the hub's user
    and server records, of which the spawner reads only the names here)."""
    return DevWorkspaceSpawner(
        user=SimpleNamespace(name=username),
        orm_spawner=SimpleNamespace(name=name, server=None),
        homes=str(state / "dev-homes"),
        projects=str(state / "dev-projects"),
    )


def test_one_agreements_researchers_share_its_project_folder_until_it_ends(
    tmp_path: Path,
) -> None:
    alice, bob = spawner(tmp_path, "alice", "agr-1"), spawner(tmp_path, "bob", "agr-1")
    elsewhere = spawner(tmp_path, "alice", "agr-2")
    homes = {s: s.prepare_home() for s in (alice, bob, elsewhere)}
    (homes[alice] / PROJECT / "notes.txt").write_text("shared", encoding="utf-8")
    (homes[alice] / "private.txt").write_text("alice only", encoding="utf-8")

    assert [p.name for p in (homes[bob] / PROJECT).iterdir()] == ["notes.txt"]
    assert not (homes[bob] / "private.txt").exists()
    assert list((homes[elsewhere] / PROJECT).iterdir()) == []
    assert (homes[bob] / LAB_CSS).is_file()  # the 'not isolated' label, in every home
    assert alice.prepare_home() == homes[alice]  # a second start keeps the link

    alice.delete_forever()  # one researcher's server removed: bob's project stays
    assert not homes[alice].exists() and (homes[bob] / PROJECT / "notes.txt").is_file()
    bob.delete_forever()  # the agreement's last home: the project folder goes with it
    assert not homes[bob].exists() and not bob.project_dir.exists()
    assert elsewhere.project_dir.is_dir()  # another agreement's folder is untouched
