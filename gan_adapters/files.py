"""Files written so that a kill never leaves half of one, and read without running code.

Atomic writes (temporary file in the same folder, then a rename), torch checkpoints loaded
with `weights_only=True`, state dicts from `.safetensors` or torch files, and TOML reading
with errors that name the file.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from gan_adapters.errors import CheckpointError, ConfigError, RunFolderError
from gan_adapters.faults import kill_point


def write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        os.chmod(tmp, _usual_mode())  # mkstemp's 0600 would hide a shared file from the user's group
        write(tmp)
        kill_point(f"rename:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _usual_mode() -> int:
    """The permissions `open()` gives a new file under this process's umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomically(path: Path, text: str) -> None:
    """A text file, atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def take_lock(lock: Path) -> bool:
    """Create `lock` holding this host and process (False: a live process holds it). A lock left by
    a process that died on this machine is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not _stale(lock):
                return False
            lock.unlink(missing_ok=True)
            continue
        os.write(handle, me.encode())
        os.close(handle)
        return True
    return False


UNWRITTEN_LOCK_SECONDS = 2.0
"""A lock still without its pid after this long was left by a crash between its creation and its write."""


def _stale(lock: Path) -> bool:
    """Whether a lock's owner is gone: a process of this machine that died, or a crash that left
    the lock without a pid. A live process (ours or another user's) or another host holds it."""
    try:
        host, _, pid = lock.read_text().partition(" ")
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True  # released meanwhile
    if not pid.strip().isdigit() or int(pid) <= 0:
        return age > UNWRITTEN_LOCK_SECONDS
    return host == socket.gethostname() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


@contextmanager
def removed_on_failure(folder: Path, worth_keeping: Callable[[], bool]) -> Iterator[None]:
    """Remove `folder` when the block fails, if the block created it and it holds nothing worth
    keeping yet (no checkpoint): a refused or crashed start leaves no empty run folder behind."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir() and not worth_keeping():
            shutil.rmtree(folder, ignore_errors=True)
        raise


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder/.lock` for the block, so two processes never write one run folder; the second
    is refused with a RunFolderError naming the holder."""
    lock = folder / ".lock"
    if not take_lock(lock):
        host, _, pid = lock.read_text().partition(" ")
        raise RunFolderError(
            f"{what} {folder} is in use by process {pid} on {host} ({lock}): wait for it to finish, "
            "or write to another folder"
        )
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename: the old checkpoint or the new, never half."""
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint, loaded without executing pickled code (tensors and plain data only)."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=torch.device("cpu"), weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc


STATE_DICT_KEYS = ("state_dict", "netG_state_dict", "G_ema", "generator")
"""Where common training scripts keep the generator's state dict inside a checkpoint."""


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch checkpoint (loaded without pickle code)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read weights {path}: {exc}") from exc
    state = read_checkpoint(path)
    for key in STATE_DICT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    return state


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's data, or a ConfigError naming the file and the problem."""
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc


def slug(name: str) -> str:
    """A name reduced to one safe path component: letters, digits, '.', '_' and '-' only,
    never starting or ending with a dot or a dash (so never '.' or '..')."""
    reduced = re.sub(r"[^A-Za-z0-9._]+", "-", str(name)).strip("-.")
    if not reduced:
        raise ConfigError(f"{name!r} gives no usable file name: use letters or digits")
    return reduced


def inside(root: Path, *parts: str) -> Path:
    """root/parts..., refused unless it resolves (symlinks followed) inside `root`."""
    path = Path(root).joinpath(*parts)
    base = Path(root).resolve()
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise ConfigError(f"{path} leads outside {root} (to {resolved}); refusing to write there")
    return path


def write_shards(
    tensors: dict[str, torch.Tensor], prefix: Path, max_bytes: int, metadata: dict[str, str]
) -> list[Path]:
    """Tensors as safetensors files `prefix-0.safetensors`, `prefix-1...`, each at most about
    `max_bytes` (for transfers that cap a file's size), written atomically."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.detach().cpu().contiguous()
        size += nbytes
    paths = []
    for index, shard in enumerate(shards):
        path = prefix.parent / f"{prefix.name}-{index}.safetensors"
        write_atomically(path, lambda tmp, shard=shard: save_file(shard, tmp, metadata=metadata))
        paths.append(path)
    return paths


def read_shards(prefix: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of `write_shards` files, and the metadata of the first."""
    from safetensors import safe_open

    paths = sorted(
        prefix.parent.glob(f"{prefix.name}-*.safetensors"), key=lambda p: int(p.stem.rsplit("-", 1)[1])
    )
    if not paths:
        raise CheckpointError(f"no {prefix.name}-N.safetensors files in {prefix.parent}")
    tensors: dict[str, torch.Tensor] = {}
    for path in paths:
        tensors |= read_weights(path)
    with safe_open(str(paths[0]), framework="pt") as handle:
        return tensors, handle.metadata() or {}
