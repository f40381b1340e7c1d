"""Which paths are second names of a recording (the rule scan() applies, for single paths)."""

from __future__ import annotations

import os
from pathlib import Path

from clasp_cli.aliases import distinct, own_name
from clasp_cli.indexer import scan


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.wav").write_bytes(b"x")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.wav").write_bytes(b"x")
    (tmp_path / "outside.wav").write_bytes(b"x")
    os.symlink("a.wav", root / "link-a.wav")
    os.symlink("../a.wav", root / "sub" / "deep-link.wav")
    os.symlink(".hidden/h.wav", root / "to-hidden.wav")
    os.symlink("../outside.wav", root / "to-outside.wav")
    os.symlink("../../outside.wav", root / "sub" / "to-outside-2.wav")
    os.symlink("missing.wav", root / "broken.wav")
    return root


def test_a_link_to_a_recording_under_the_roots_is_its_second_name(tmp_path):
    root = _tree(tmp_path)
    assert own_name(root / "link-a.wav", [root]) == str(root / "a.wav")
    assert own_name(root / "sub" / "deep-link.wav", [root]) == str(root / "a.wav")
    assert own_name(root / "a.wav", [root]) is None


def test_links_the_walk_needs_are_their_own_names(tmp_path):
    root = _tree(tmp_path)
    assert own_name(root / "to-hidden.wav", [root]) is None  # the walk skips dot-folders
    assert own_name(root / "to-outside.wav", [root]) is None
    assert own_name(root / "broken.wav", [root]) is None


def test_a_root_reached_through_a_link_keeps_its_names(tmp_path):
    root = _tree(tmp_path)
    os.symlink(root, tmp_path / "via")
    assert own_name(tmp_path / "via" / "a.wav", [tmp_path / "via"]) is None
    assert own_name(tmp_path / "via" / "link-a.wav", [tmp_path / "via"]) == str(tmp_path / "via" / "a.wav")


def test_distinct_keeps_what_scan_keeps(tmp_path):
    root = _tree(tmp_path)
    every = sorted(p for p in root.rglob("*.wav") if not any(x.startswith(".") for x in p.relative_to(root).parts))
    kept = {os.path.realpath(p) for p in distinct(every, [root]) if p.exists()}
    assert kept == {os.path.realpath(p) for p in scan([root])[0] if p.exists()}
    assert len([p for p in distinct(every, [root]) if "outside" in p.name]) == 1
