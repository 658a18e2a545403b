"""The command-line skeleton every tool of the suite shares.

A tool builds its parser, adds :func:`add_common_options` (``--seed --device --dtype --weights
--skip-existing --quiet --version``), checks its own options, then hands over to :func:`run_batch`::

    plan jobs -> check outputs (types, folders, the tool's own check) -> drop the jobs whose output
    exists (--skip-existing) -> remove stale temporary files of the outputs -> check the device
    -> load the models -> run every job under a progress bar -> summary line -> exit code

Exit codes: 0 every file done (or skipped); 1 some files failed (each reported on one line as it
happens and listed at the end, the others still ran); 2 a usage or input error, reported on one
line before any work; 130 interrupted by Ctrl-C (SIGINT): the file being written is abandoned
(no partial output, no temporary file), the finished ones stay, and one line says how many are
done; ``--skip-existing`` then finishes the rest. A run killed outright (SIGKILL) can leave the
temporary file of the output being written (``.<stem>.XXXXXXXX<suffix>``); the next run writing
that output removes it (:func:`shared.files.remove_stale_temporaries`). Nothing here imports
torch at module level, so ``--help``, ``--version`` and argument errors answer at once: torch is
first imported when the device is checked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

from .files import (DEVICE_NAMES, InputError, Job, check_device_name, check_output_folders, check_output_types,
                    device_from_string, plan_jobs, remove_stale_temporaries)

PACKAGE = "fastdiff-suite"
#: ``--dtype`` choices: names of torch floating-point types (:func:`shared.pipeline.as_dtype` reads them).
DTYPES = ("float32", "bfloat16", "float16")

#: ``handle(job) -> network evaluations``: processes one input and writes its output.
Handler = Callable[[Job], int]

#: Exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_jobs`: ``done`` of ``total`` jobs had finished."""

    def __init__(self, done: int, total: int):
        super().__init__(f"{done} of {total} files done")
        self.done, self.total = done, total


def package_version() -> str:
    """The installed version of the suite, or a note saying it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown (not installed)"


def add_common_options(parser, seed_help: str = "random seed of the stochastic samplers") -> None:
    """The options every command of the suite shares:
    ``--seed --device --dtype --weights --skip-existing --quiet --version``."""
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--device", default="auto", help=f"{DEVICE_NAMES} (default auto: CUDA, else MPS, else CPU)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="floating-point type the models run in (default float32; bfloat16/float16 are for "
                             "GPUs: on a CPU without native support they are ~100x slower, see the README)")
    parser.add_argument("--weights", default=None, help="local weights folder (default: the shipped models)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output file exists (finishes an interrupted folder); "
                             "by default existing outputs are overwritten")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--version", action="version", version=f"%(prog)s ({PACKAGE} {package_version()})")


def model_options(args) -> dict:
    """The ``from_pretrained`` keywords the common options give: ``device`` and ``torch_dtype`` (a name)."""
    return {"device": args.device, "torch_dtype": args.dtype}


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; return the usage-error exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def preflight(args, problem: Optional[str], output) -> Optional[int]:
    """Checks of a single-output command before anything heavy loads: the exit code to return now (the
    argument ``problem``, a bad ``--device``, or 0 when ``--skip-existing`` finds ``output``), else None."""
    if problem:
        return fail(problem)
    try:
        check_device_name(args.device)
    except InputError as err:
        return fail(str(err))
    if args.skip_existing and Path(output).exists():
        if not args.quiet:
            print(f"{output} exists: skipped")
        return 0
    return None


def progress(total: int, unit: str, quiet: bool = False):
    """A transient progress bar over the parts of one file (tiles, chunks); hidden when
    ``quiet`` or when there is a single part. Call ``update(1)`` per part, then ``close()``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, leave=False, disable=quiet or total < 2)


def run_jobs(jobs: list[Job], handle: Handler, quiet: bool = False,
             unit: str = "file") -> tuple[list[str], int, float]:
    """Run ``handle(job)`` for every job under a progress bar.

    ``handle`` returns the network evaluations it used. An :class:`InputError` (or any other
    error) in one job is printed as one line and collected; the other jobs still run.
    Returns ``(failures, evaluations, seconds)``. Ctrl-C closes the bar and raises
    :class:`Interrupted` with the number of jobs finished (the output being written is abandoned:
    :func:`shared.files.atomic_write` removes its temporary file).
    """
    import time

    from tqdm.auto import tqdm

    failures: list[str] = []
    evaluations = done = 0
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), unit=unit, disable=quiet, dynamic_ncols=True)
    try:
        for job in jobs:
            bar.set_description(job.source.name)
            try:
                evaluations += handle(job)
                done += 1
            except InputError as err:
                failures.append(str(err))
                bar.write(f"error: {err}", file=sys.stderr)
            except Exception as err:  # one file failing must not stop a folder
                failures.append(f"{job.source}: {type(err).__name__}: {err}")
                bar.write(f"error: {job.source}: {type(err).__name__}: {err}", file=sys.stderr)
            bar.update(1)
    except KeyboardInterrupt:
        raise Interrupted(done, len(jobs)) from None
    finally:
        bar.close()
    return failures, evaluations, time.perf_counter() - start


def report_failures(failures: list[str]) -> int:
    """List failed files on stderr; exit code 1 if any failed, else 0."""
    if not failures:
        return 0
    print(f"{len(failures)} file(s) failed:", file=sys.stderr)
    for f in failures:
        print(f"  {f}", file=sys.stderr)
    return 1


def run_batch(args, extensions: Iterable[str], load: Callable[[], tuple[Handler, str]],
              output_extensions: Optional[Iterable[str]] = None,
              check: Optional[Callable[[Job], None]] = None) -> int:
    """Run a command over its inputs and return its exit code.

    Args:
        args: the parsed arguments; uses ``input``, ``output``, ``device`` and ``quiet``.
        extensions: the input types (a folder is searched for these).
        load: called once every check has passed: imports and loads the models, checks the
            tool's options against them, and returns ``(handle, mode)``: the :data:`Handler`
            and the words the summary line ends with (for example ``"one-step"``).
        output_extensions: the types the tool writes (default: ``extensions``).
        check: the tool's own check of one job, before anything is loaded.

    An :class:`InputError` before the jobs run (a bad device, input or output, or from ``check``
    or ``load``) is one line on stderr and exit code 2; after that, see :func:`run_jobs`.
    With ``args.skip_existing``, jobs whose output exists are skipped (all checks still apply to
    them) and counted in the summary; when none is left, nothing is loaded and the exit code is 0.
    Stale temporary files of the outputs (left by a killed run) are removed once the checks pass.
    Ctrl-C at any point is one line on stderr and exit code 130 (:data:`INTERRUPTED`).
    """
    extensions = tuple(extensions)
    total = skipped = 0
    try:
        try:
            check_device_name(args.device)
            jobs = plan_jobs(args.input, args.output, extensions)
            check_output_types(jobs, extensions if output_extensions is None else output_extensions)
            check_output_folders(jobs)
            for job in jobs:
                if check is not None:
                    check(job)
            total = len(jobs)
            todo = [j for j in jobs if not (getattr(args, "skip_existing", False) and j.target.exists())]
            skipped = total - len(todo)
            target = jobs[0].target if len(jobs) == 1 else Path(args.output)
            if not todo:
                remove_stale_temporaries(j.target for j in jobs)
                if not args.quiet:
                    print(f"0/0 files -> {target}, {skipped} skipped (outputs exist)")
                return 0
            device_from_string(args.device)   # imports torch: is this device here?
            handle, mode = load()
        except InputError as err:
            return fail(str(err))
        remove_stale_temporaries(j.target for j in jobs)
        failures, evaluations, seconds = run_jobs(todo, handle, args.quiet)
    except Interrupted as err:
        return interrupted(skipped + err.done, total)
    except KeyboardInterrupt:   # while checking or loading: no job had run
        return interrupted(skipped, total)

    if not args.quiet:
        done = len(todo) - len(failures)
        extra = f", {skipped} skipped" if skipped else ""
        print(f"{done}/{len(todo)} files -> {target} in {seconds:.2f} s, {evaluations} network evaluations "
              f"({mode}){extra}")
    return report_failures(failures)


def run_program(main: Callable[[], int]) -> None:
    """Run a command's ``main()`` and exit with its code. Ctrl-C anywhere, even while the
    arguments are parsed (before :func:`run_batch` takes over), is one line and exit code 130."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = INTERRUPTED
    raise SystemExit(code)


def interrupted(done: int, total: int) -> int:
    """The one line a Ctrl-C prints on stderr; returns :data:`INTERRUPTED`."""
    print(f"interrupted: {done} of {total} files done; re-run with --skip-existing to finish", file=sys.stderr)
    return INTERRUPTED
