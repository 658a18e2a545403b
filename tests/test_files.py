"""shared.files.atomic_write: all-or-nothing output with normal permissions."""

import os

import pytest

from shared.files import atomic_write


def test_atomic_write_gives_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.txt", lambda p: p.write_text("ok"))
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").read_text() == "ok"
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_leaves_nothing(tmp_path):
    def broken(path):
        path.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.txt", broken)
    assert list(tmp_path.iterdir()) == []
