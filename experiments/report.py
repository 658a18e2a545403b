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


def print_targets(targets: dict, paths: tuple[Path, Path]) -> None:
    """One line per target (PASS/MISS with its measured value), then where the results went."""
    for name, v in targets.items():
        print(f"target {name}: {'PASS' if v['pass'] else 'MISS'} ({v['value']:.3f})")
    print(f"\nwrote {paths[0]} and {paths[1]}")
