"""Command line: ``python -m science.molecules sample|score``.

    python -m science.molecules sample -n 1000 -o mols.csv
    python -m science.molecules sample -n 100 -o qed.csv --reward qed --guidance svdd --reward-calls 32
    python -m science.molecules sample -n 100 -o mine.csv --reward mymodule:score --guidance best-of-n
    python -m science.molecules score mols.csv -o report.json      # any list of SMILES (.csv or .smi)

``sample`` writes a CSV with ``smiles``, ``valid`` and one column per reward (qed, sa, logp, and the
steering reward when it is a user function), atomically, and prints one summary line. ``score``
writes validity, uniqueness, novelty (against MOSES train, when installed), internal diversity and
mean rewards as JSON. Heavy libraries load only after the arguments are checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from shared.cli import add_common_options, fail, model_options, package_version, preflight, progress

GUIDANCE = ("none", "svdd", "best-of-n")
INPUT_KINDS = (".csv", ".smi", ".txt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m science.molecules",
                                description="Molecule generation with masked discrete diffusion and reward "
                                            "steering (SVDD), and metrics for any list of SMILES.")
    p.add_argument("--version", action="version", version=f"%(prog)s (fastdiff-suite {package_version()})")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="generate molecules into a CSV")
    s.add_argument("-n", type=int, required=True, help="number of molecules")
    s.add_argument("-o", "--output", required=True, help="output .csv")
    s.add_argument("--reward", default=None, help="qed, sa, logp, or module:function (smiles -> float)")
    s.add_argument("--guidance", choices=GUIDANCE, default="none", help="reward steering (needs --reward)")
    s.add_argument("--reward-calls", type=int, default=32, help="reward evaluations per molecule (svdd, best-of-n)")
    s.add_argument("--candidates", type=int, default=8,
                   help="svdd: candidate rollouts per decision (reward-calls // candidates decisions)")
    s.add_argument("--alpha", type=float, default=0.0, help="svdd: selection temperature (0: argmax)")
    s.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    s.add_argument("--batch-size", type=int, default=256, help="molecules per batch")
    add_common_options(s, seed_help="random seed of the sampler")
    c = sub.add_parser("score", help="metrics of a list of SMILES into a JSON report")
    c.add_argument("input", help=".csv with a 'smiles' column, or .smi/.txt with one SMILES per line")
    c.add_argument("-o", "--output", required=True, help="output .json")
    c.add_argument("--no-novelty", action="store_true", help="skip novelty (reading MOSES train takes seconds)")
    c.add_argument("--quiet", action="store_true", help="no summary line")
    return p


def check_sample(args) -> Optional[str]:
    """The first problem with ``sample``'s arguments, or None."""
    if args.n < 1:
        return f"-n must be >= 1, got {args.n}"
    if Path(args.output).suffix.lower() != ".csv":
        return f"{args.output}: the output must be a .csv file"
    if args.guidance != "none" and args.reward is None:
        return f"--guidance {args.guidance} needs --reward"
    if args.reward_calls < 1 or args.candidates < 1 or args.batch_size < 1:
        return "--reward-calls, --candidates and --batch-size must be >= 1"
    if not args.alpha >= 0:
        return f"--alpha must be >= 0, got {args.alpha}"
    if args.steps is not None and args.steps < 1:
        return f"--steps must be >= 1, got {args.steps}"
    return None


def sample(args) -> int:
    from shared.files import InputError

    output = Path(args.output)
    code = preflight(args, check_sample(args), output)
    if code is not None:
        return code
    import torch

    from shared.files import atomic_write

    from .generator import MoleculeGenerator
    from .metrics import uniqueness

    try:
        from .rewards import resolve

        if args.reward is not None:
            resolve(args.reward)                       # a bad reward fails before the model loads
        gen = MoleculeGenerator.from_pretrained(args.weights, **model_options(args))
        bar = progress(args.n, "mol", args.quiet)
        out = gen.sample(args.n, reward=args.reward, guidance=args.guidance, reward_calls=args.reward_calls,
                         candidates=args.candidates, alpha=args.alpha, num_inference_steps=args.steps,
                         batch_size=args.batch_size, generator=torch.Generator().manual_seed(args.seed),
                         progress=bar.update)
        bar.close()
        atomic_write(output, lambda tmp: write_csv(tmp, out))
    except (InputError, ValueError) as err:
        return fail(str(err))
    if not args.quiet:
        steer = args.reward or "qed"
        key = steer if steer in out.rewards else steer.rpartition(":")[2]
        valid = sum(out.valid) / len(out.valid)
        print(f"{args.n} molecules -> {output}: validity {valid:.3f}, uniqueness {uniqueness(out.smiles):.3f}, "
              f"mean {key} {out.rewards[key].mean():.3f}, {out.network_evaluations:.0f} network evaluations and "
              f"{out.reward_calls:.0f} reward calls per molecule, {out.seconds:.1f} s")
    return 0


def write_csv(path: Path, out) -> None:
    import csv

    names = list(out.rewards)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "valid", *names])
        for i, (s, v) in enumerate(zip(out.smiles, out.valid)):
            writer.writerow([s, int(v), *(f"{out.rewards[n][i]:.6g}" for n in names)])


def read_smiles(path: Path) -> list[str]:
    """SMILES of a .csv (a ``smiles`` column, any case) or .smi/.txt (first field per line);
    ``InputError`` naming the file for a missing, unreadable or empty input."""
    import csv

    from shared.files import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() not in INPUT_KINDS:
        raise InputError(f"{path}: expected {', '.join(INPUT_KINDS)}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it as text ({err})") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        header = [h.strip().lower() for h in rows[0]] if rows else []
        if "smiles" not in header:
            raise InputError(f"{path}: no 'smiles' column in the header {rows[0] if rows else []}")
        col = header.index("smiles")
        smiles = [r[col].strip() for r in rows[1:] if len(r) > col]
    else:
        smiles = [line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not smiles:
        raise InputError(f"{path}: no SMILES in it")
    return smiles


def score(args) -> int:
    from shared.files import InputError, atomic_write

    from .metrics import evaluate

    output = Path(args.output)
    if output.suffix.lower() != ".json":
        return fail(f"{output}: the report must be a .json file")
    try:
        smiles = read_smiles(Path(args.input))
        reference = None
        if not args.no_novelty:
            try:
                from .moses import read_split

                reference = frozenset(read_split("train"))
            except FileNotFoundError:
                print("note: MOSES train is not installed: novelty skipped", file=sys.stderr)
        report = {"input": str(args.input), **evaluate(smiles, reference)}
        atomic_write(output, lambda tmp: tmp.write_text(json.dumps(report, indent=2)))
    except InputError as err:
        return fail(str(err))
    if not args.quiet:
        print(", ".join(f"{k} {v:.3f}" for k, v in report.items() if isinstance(v, float)) + f" -> {output}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return sample(args) if args.command == "sample" else score(args)
