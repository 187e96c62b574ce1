"""Atomic file writes: a file appears under its name complete, or not at all."""

import os

import pytest

from engine.files import StagedFile, atomic_path, write_atomic


def test_a_write_appears_whole_with_ordinary_permissions(tmp_path):
    target = write_atomic(tmp_path / "a.toml", "x = 1\n")
    assert target.read_text() == "x = 1\n" and os.listdir(tmp_path) == ["a.toml"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "a.bin", b"old")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".onnx") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.bin.") and tmp.suffix == ".onnx"
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_a_staged_file_is_named_only_on_commit(tmp_path):
    staged = StagedFile(tmp_path / "v.mp4")
    staged.tmp.write_bytes(b"frames")
    assert not (tmp_path / "v.mp4").exists()
    assert staged.commit().read_bytes() == b"frames" and os.listdir(tmp_path) == ["v.mp4"]
    dropped = StagedFile(tmp_path / "w.mp4")
    dropped.discard()
    assert os.listdir(tmp_path) == ["v.mp4"]


def test_a_full_disk_is_one_clear_error_and_leaves_no_file(tmp_path):
    from engine import InputError

    with pytest.raises(InputError, match=r"output: cannot write .*b\.wav: No space left on device"):
        with atomic_path(tmp_path / "b.wav") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []
