"""File handling every command-line tool of the suite shares.

* :func:`plan_jobs` turns an input file or folder plus an output file or folder into
  ``(input, output)`` pairs with the same base names, refusing to overwrite any input.
* :func:`atomic_write` writes through a temporary file in the destination folder and renames
  it into place, so a failure never leaves a partial output.
* :func:`device_from_string` picks the device at run time ("auto" -> CUDA when available).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch


class InputError(Exception):
    """A problem with one input the user gave: reported as one line, naming the file."""


@dataclass
class Job:
    source: Path
    target: Path


def device_from_string(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` if available, else ``mps`` if available, else ``cpu``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but CUDA is not available on this machine")
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


def atomic_write(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``target``, then rename it into place.

    The temporary file keeps ``target``'s suffix so format-by-extension writers work, and gets the
    permissions a normal ``open`` would give (``0o666`` minus the umask), not mkstemp's ``0o600``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; return the usage-error exit code 2."""
    import sys

    print(f"error: {message}", file=sys.stderr)
    return 2


def run_jobs(jobs: list[Job], handle: Callable[[Job], int], quiet: bool = False,
             unit: str = "file") -> tuple[list[str], int, float]:
    """Run ``handle(job)`` for every job under a progress bar.

    ``handle`` returns the network evaluations it used. An :class:`InputError` (or any other
    error) in one job is printed as one line and collected; the other jobs still run.
    Returns ``(failures, evaluations, seconds)``.
    """
    import sys
    import time

    from tqdm.auto import tqdm

    failures: list[str] = []
    evaluations = 0
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), unit=unit, disable=quiet, dynamic_ncols=True)
    for job in jobs:
        bar.set_description(job.source.name)
        try:
            evaluations += handle(job)
        except InputError as err:
            failures.append(str(err))
            bar.write(f"error: {err}", file=sys.stderr)
        except Exception as err:  # one file failing must not stop a folder
            failures.append(f"{job.source}: {type(err).__name__}: {err}")
            bar.write(f"error: {job.source}: {type(err).__name__}: {err}", file=sys.stderr)
        bar.update(1)
    bar.close()
    return failures, evaluations, time.perf_counter() - start


def report_failures(failures: list[str]) -> int:
    """List failed files on stderr; exit code 1 if any failed, else 0."""
    import sys

    if not failures:
        return 0
    print(f"{len(failures)} file(s) failed:", file=sys.stderr)
    for f in failures:
        print(f"  {f}", file=sys.stderr)
    return 1


def add_common_options(parser, seed_help: str = "random seed of the stochastic samplers") -> None:
    """The options every command of the suite shares: ``--seed --device --weights --quiet``."""
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--weights", default=None, help="local weights folder (default: the shipped models)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def check_output_types(jobs: list[Job], extensions: Iterable[str]) -> None:
    """:class:`InputError` if an output path has an extension the command cannot write."""
    exts = tuple(extensions)
    for job in jobs:
        if job.target.suffix.lower() not in exts:
            raise InputError(f"{job.target}: unsupported output type '{job.target.suffix}' (use {', '.join(exts)})")
