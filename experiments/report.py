"""Output shared by the benchmark scripts: JSON + PNG side by side, and the target verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def write_results(result: dict, out: str | Path, plot: Callable[[dict, Path], None]) -> tuple[Path, Path]:
    """Write ``result`` to ``out.json`` and its plot to ``out.png``; returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out.with_suffix(".json"), out.with_suffix(".png")
    json_path.write_text(json.dumps(result, indent=2))
    plot(result, png_path)
    return json_path, png_path


def script_parser(prog: str, doc: str):
    """The argument parser of an experiment script: its module docstring as the description."""
    import argparse

    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run_script(parser, run: Callable, plot: Callable[[dict, Path], None], argv=None) -> int:
    """Parse ``argv``, compute ``run(args)`` and write it (``args.out``.json/.png), then print its
    ``targets`` (when it has them: :func:`print_targets`); exit code 0."""
    args = parser.parse_args(argv)
    result = run(args)
    paths = write_results(result, args.out, plot)
    if "targets" in result:
        print_targets(result["targets"], paths)
    else:
        print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


def save_figure(fig, path: Path) -> None:
    """Lay out ``fig``, write it to ``path`` (PNG, 120 dpi) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def finish_axes(ax, path: Path, xlabel: str, ylabel: str, title: str, legend_size: int = 8) -> None:
    """Label ``ax``, add its legend and write its figure to ``path`` (:func:`save_figure`)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    save_figure(ax.figure, path)


def print_targets(targets: dict, paths: tuple[Path, Path]) -> None:
    """One line per target (PASS/MISS with its measured value), then where the results went."""
    for name, v in targets.items():
        print(f"target {name}: {'PASS' if v['pass'] else 'MISS'} ({v['value']:.3f})")
    print(f"\nwrote {paths[0]} and {paths[1]}")
