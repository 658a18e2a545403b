"""shared.files: all-or-nothing output with normal permissions, checks made before any work."""

import os
import re

import pytest

from shared.files import InputError, Job, atomic_write, check_device_name, check_output_folders, device_from_string


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


def test_writer_error_names_the_output_not_the_temporary_file(tmp_path):
    def unsupported(path):
        raise RuntimeError(f"Error opening '{path}': Supported file format but unsupported encoding.")

    with pytest.raises(InputError) as err:
        atomic_write(tmp_path / "out.wav", unsupported)
    assert str(err.value).startswith(f"{tmp_path / 'out.wav'}: cannot write") and "/." not in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_device_names(name):
    check_device_name(name)


@pytest.mark.parametrize("name", ["gpu", "bogus", "cuda:", "cuda:x", "cpu:0 ", ""])
def test_not_device_names(name):
    with pytest.raises(InputError, match=r"not a device \(use auto, cpu, cuda, cuda:N or mps\)"):
        check_device_name(name)
    with pytest.raises(InputError, match="not a device"):
        device_from_string(name)


def test_output_folder_checks(tmp_path, read_only_dir):
    (tmp_path / "file").write_text("x")
    check_output_folders([Job(tmp_path / "a.wav", tmp_path / "new" / "deeper" / "a.wav")])   # created later
    with pytest.raises(InputError, match="is a file"):
        check_output_folders([Job(tmp_path / "a.wav", tmp_path / "file" / "a.wav")])
    with pytest.raises(InputError, match=f"^{re.escape(str(read_only_dir))}: output folder is not writable$"):
        check_output_folders([Job(tmp_path / "a.wav", read_only_dir / "a.wav")])
    with pytest.raises(InputError, match="folder is not writable, so the output folder .* cannot be created"):
        check_output_folders([Job(tmp_path / "a.wav", read_only_dir / "sub" / "a.wav")])
