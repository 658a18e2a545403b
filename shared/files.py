"""File handling every command-line tool of the suite shares.

* :func:`plan_jobs` turns an input file or folder plus an output file or folder into
  ``(input, output)`` pairs with the same base names, refusing to overwrite any input.
* :func:`check_output_types` and :func:`check_output_folders` refuse, before any work, outputs
  the tool cannot write: an unsupported extension, a folder that is not writable.
* :func:`atomic_write` writes through a temporary file in the destination folder and renames
  it into place, so a failure never leaves a partial output; :func:`remove_stale_temporaries`
  removes the temporary files a killed run (SIGKILL, power loss) could not.
* :func:`check_device_name` and :func:`device_from_string` check and pick the device at run time
  ("auto" -> CUDA when available).

Nothing here imports torch at module level (:func:`device_from_string` imports it when called),
so a command can check its arguments before loading anything heavy.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

#: Device names the suite accepts (``--device`` and ``device=`` of the pipelines).
DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class InputError(ValueError):
    """A problem with an input or argument the user gave: one line naming the file or the argument.
    A ``ValueError``, so library callers can catch it as the usual bad-value error."""


@dataclass
class Job:
    source: Path
    target: Path


def check_device_name(name: str) -> None:
    """:class:`InputError` unless ``name`` is one of auto, cpu, cuda, cuda:N or mps (no torch import)."""
    if not _DEVICE_PATTERN.fullmatch(str(name)):
        raise InputError(f"--device {name}: not a device (use {DEVICE_NAMES})")


def device_from_string(name="auto"):
    """The ``torch.device`` for ``name``: ``auto`` -> ``cuda`` if available, else ``mps`` if
    available, else ``cpu``. :class:`InputError` for a name that is not a device, or a device
    this machine does not have (CUDA or MPS unavailable, ``cuda:N`` past the last GPU)."""
    import torch

    name = str(name)   # a torch.device works too
    check_device_name(name)
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if ":" in name and int(name.split(":")[1]) >= count:
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    if name == "mps" and not has_mps:
        raise InputError(f"--device {name}: MPS is not available on this machine")
    return torch.device(name)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def plan_jobs(source: str | os.PathLike, output: str | os.PathLike, extensions: Iterable[str],
              output_suffix: Optional[str] = None) -> list[Job]:
    """Pair every input with its output path.

    ``source`` is a file or a folder (files with ``extensions``, case-insensitive, sorted, not
    recursive). For a folder, ``output`` is a folder (created) and outputs keep the base names;
    for a file, ``output`` is a file path, or an existing folder to put it in. ``output_suffix``
    replaces the extension (for example ".png"). Raises :class:`InputError` for a missing
    input, an empty folder, or an output that would overwrite an input.
    """
    src, out = Path(source), Path(output)
    exts = {e.lower() for e in extensions}
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if not files:
            raise InputError(f"{src}: folder has no supported files ({', '.join(sorted(exts))})")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: input is a folder, so the output must be a folder")
        jobs = [Job(f, out / (f.stem + output_suffix if output_suffix else f.name)) for f in files]
    else:
        if out.is_dir():
            out = out / (src.stem + output_suffix if output_suffix else src.name)
        jobs = [Job(src, out)]
    inputs = [j.source for j in jobs]
    for job in jobs:
        if any(_same_file(i, job.target) for i in inputs):
            raise InputError(f"{job.target}: output would overwrite an input; choose another output path")
    return jobs


def check_output_types(jobs: list[Job], extensions: Iterable[str]) -> None:
    """:class:`InputError` if an output path has an extension the command cannot write."""
    exts = tuple(extensions)
    for job in jobs:
        if job.target.suffix.lower() not in exts:
            raise InputError(f"{job.target}: unsupported output type '{job.target.suffix}' (use {', '.join(exts)})")


def check_output_folders(jobs: list[Job]) -> None:
    """:class:`InputError` naming the folder if an output cannot be written there: the folder (or,
    when it does not exist yet, the closest existing folder above it, where it will be created)
    is not writable, or a path on the way is a file. Checked before any work, so a long run does
    not end with nothing written."""
    for folder in sorted({job.target.parent for job in jobs}):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise InputError(f"{existing}: is a file, so the output folder {folder} cannot be created")
        if not os.access(existing, os.W_OK | os.X_OK):
            if existing == folder:
                raise InputError(f"{folder}: output folder is not writable")
            raise InputError(f"{existing}: folder is not writable, so the output folder {folder} cannot be created")


def _temporary_prefix(target: Path) -> str:
    """The name :func:`atomic_write`'s temporary files for ``target`` start with."""
    return f".{target.stem}."


def remove_stale_temporaries(targets: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporary files :func:`atomic_write` left beside ``targets``; return them.

    :func:`atomic_write` removes its temporary file on any error, Ctrl-C included, but a process
    killed outright (SIGKILL, power loss) cannot. Only files named exactly as :func:`atomic_write`
    names the temporaries *of these targets* (``.<stem>.<8 mkstemp characters><suffix>``) are
    removed, never anything else in the folder. Call it only for targets this process is about to
    own: a second process writing the same target at the same time would lose its temporary file
    (two such runs would race on the output anyway). Each folder is listed once.
    """
    by_folder: dict[Path, list[Path]] = {}
    for target in map(Path, targets):
        by_folder.setdefault(target.parent, []).append(target)
    removed = []
    for folder, folder_targets in by_folder.items():
        try:
            hidden = [p for p in folder.iterdir() if p.name.startswith(".")]
        except OSError:   # no folder yet, or not listable: nothing of ours there
            continue
        if not hidden:
            continue
        patterns = [re.compile(re.escape(_temporary_prefix(t)) + r"[a-z0-9_]{8}" + re.escape(t.suffix))
                    for t in folder_targets]
        for path in hidden:
            if any(p.fullmatch(path.name) for p in patterns) and path.is_file():
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed


def atomic_write(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``target``, then rename it into place.

    The temporary file keeps ``target``'s suffix so format-by-extension writers work, and gets the
    permissions a normal ``open`` would give (``0o666`` minus the umask), not mkstemp's ``0o600``.
    Errors name ``target``, never the hidden temporary file: a folder that cannot be written is an
    :class:`InputError` naming the folder, and a writer's error that names the temporary file is
    re-raised as an :class:`InputError` naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=target.suffix, dir=target.parent)
    except OSError as err:
        raise InputError(f"{target.parent}: cannot write in this folder ({err.strerror or err})") from None
    try:   # from here on, any exit (an error, Ctrl-C's KeyboardInterrupt) removes the temporary file
        os.close(fd)
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception) and not isinstance(err, InputError) and tmp in str(err):
            raise InputError(f"{target}: cannot write ({str(err).replace(tmp, target.name)})") from None
        raise


def atomic_directory(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)`` on a fresh temporary folder beside ``target`` (a model folder, a Zarr store),
    then put it in ``target``'s place (an existing ``target`` is removed just before the rename). On any
    error the temporary folder is removed and ``target`` is left as it was."""
    import shutil

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as err:
        raise InputError(f"{target.parent}: cannot write in this folder ({err.strerror or err})") from None
    try:
        write(tmp)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
