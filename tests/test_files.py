"""Atomic writes, safe names and the image formats users bring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gan_adapters as ga
from gan_adapters.errors import DataError
from gan_adapters.files import inside, slug, write_atomically, write_text_atomically
from gan_adapters.training.data import load_image_folder


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")

    def half_then_fail(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_atomically_written_files_get_the_permissions_open_would_give(tmp_path):
    """Adapter files and run folders are shared: mkstemp's owner-only 0600 must not leak out."""
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    previous = os.umask(0o027)
    try:
        write_text_atomically(tmp_path / "atomic.txt", "x")
        (tmp_path / "group.txt").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "atomic.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "group.txt").stat().st_mode & 0o777 == 0o640, "what open() gives under that umask"
    write_text_atomically(tmp_path / "again.txt", "x")
    assert (tmp_path / "again.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_names_are_slugged_and_paths_stay_inside(tmp_path):
    assert slug("../../somewhere") == "somewhere"
    assert slug("Emoji faces/v2") == "Emoji-faces-v2" and slug(".hidden.") == "hidden"
    with pytest.raises(ga.ConfigError, match="no usable file name"):
        slug("..")
    (tmp_path / "out").mkdir()
    assert inside(tmp_path / "out", "cells", "a") == tmp_path / "out" / "cells" / "a"
    with pytest.raises(ga.ConfigError, match="leads outside"):
        inside(tmp_path / "out", "..", "elsewhere")
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(ga.ConfigError, match="leads outside"):
        inside(tmp_path / "out", "link", "x")


def _save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def test_every_image_mode_users_bring_loads_as_rgb_in_range(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    gradient = np.tile(np.linspace(0, 1, 32), (32, 1))
    _save(Image.fromarray((gradient * 255).astype(np.uint8), "L"), folder / "a-grey.png")
    _save(Image.fromarray((gradient * 65535).astype(np.uint16)), folder / "b-grey16.png")
    _save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), folder / "c-cmyk.jpg", quality=95)
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (8, 8, 24, 24))
    _save(rgba, folder / "d-rgba.png")
    _save(Image.new("P", (40, 24), 3), folder / "e-palette-wide.gif")
    images = load_image_folder(folder, 16).images
    assert images.shape == (5, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    grey, grey16, cmyk, rgba_loaded = images[0], images[1], images[2], images[3]
    assert torch.allclose(grey16, grey, atol=0.02), "16-bit greyscale scaled, not clipped to white"
    assert grey16[:, :, 0].mean() < -0.8 and grey16[:, :, -1].mean() > 0.8
    assert cmyk[0].mean() > 0.9 and cmyk[1].mean() < -0.9, "CMYK cyan-free, magenta+yellow: red"
    assert torch.allclose(rgba_loaded[:, 0, 0], torch.ones(3)), "transparent pixels on white"
    assert rgba_loaded[2, 8, 8] > 0.9 and rgba_loaded[0, 8, 8] < -0.9, "opaque blue kept"


def test_decompression_bombs_and_damaged_files_are_skipped_or_refused(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "images"
    folder.mkdir()
    _save(Image.new("RGB", (8, 8), "white"), folder / "a-fine.png")
    _save(Image.new("L", (120, 120)), folder / "b-bomb.png")
    (folder / "c-truncated.png").write_bytes((folder / "a-fine.png").read_bytes()[:40])
    (folder / "d-notes.txt").write_text("not an image")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 120 x 120 is more than twice that: a bomb
    loaded = load_image_folder(folder, 8)
    assert [p.name for p in loaded.files] == ["a-fine.png"]
    assert sorted(p.name for p in loaded.skipped) == ["b-bomb.png", "c-truncated.png", "d-notes.txt"]
    assert "skipped 3 files" in caplog.text
    with pytest.raises(DataError, match="3 files in .* are not readable images: b-bomb.png"):
        load_image_folder(folder, 8, strict=True)


def test_a_lock_with_no_pid_or_pid_zero_is_stale_and_a_live_or_foreign_one_is_not(tmp_path, monkeypatch):
    """A crash between creating the lock and writing its pid leaves it empty (or 0): taken over. A
    live process of this machine, one of another user (os.kill: PermissionError) and one on
    another host all hold it."""
    import os
    import socket

    from gan_adapters.files import take_lock

    lock, host = tmp_path / ".lock", socket.gethostname()
    for stale in ("", f"{host} ", f"{host} 0"):
        lock.write_text(stale)
        assert not take_lock(lock), "just created: its creator may be writing its pid now"
        old = lock.stat().st_mtime - 10
        os.utime(lock, (old, old))
        assert take_lock(lock), repr(stale)
        assert lock.read_text() == f"{host} {os.getpid()}"
    for held in (f"{host} {os.getppid()}", f"elsewhere-{host} 999999"):
        lock.write_text(held)
        assert not take_lock(lock), held
        assert lock.read_text() == held, "a held lock is left as it was"

    def not_permitted(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_permitted)
    lock.write_text(f"{host} 4242")
    assert not take_lock(lock), "another user's live process holds its lock"
