"""Molecule generation benchmark (issue 14): the shipped masked-diffusion model, the CharRNN baseline and
reward steering, in one run, on MOSES.

    python -m experiments.science.benchmark_molecules          # the shipped model and the kept baseline

Generation quality (``--samples`` molecules per row, seeded): the MDLM model unguided at ``--steps``, the
CharRNN trained with the same data and budget (``--charrnn``), and MOSES's published CharRNN numbers
as anchors (not run here). Metrics: validity, uniqueness@1k and @``--samples``, novelty against MOSES
train, internal diversity (IntDiv1), FCD against ``--reference`` molecules of MOSES test and of
test_scaffolds (``fcd_torch``, whose ChemNet weights ship in its wheel), SNN (mean nearest-neighbour
Tanimoto similarity to the same test molecules, Morgan radius 2, 1024 bits), and the QED / SA / logP
distributions (histograms in the plot).
Steering (``--steer`` molecules per row): QED of unguided, best-of-N and SVDD at equal reward calls
(``--budgets``), mean and top-10 % QED with validity. Writes ``--out``.json and .png and checks
issue 14's targets.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..report import run_script, save_figure, script_parser

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DEFAULTS = {"weights": HERE.parents[1] / "science" / "molecules" / "weights" / "mdlm",
            "charrnn": HERE / "baselines" / "molecules_charrnn"}
#: SVDD candidates per decision of the generator (MoleculeGenerator.sample's default)
DEFAULT_CANDIDATES = 8
#: MOSES's published CharRNN (Polykovskiy et al. 2020, table 2), for reference only.
MOSES_CHARRNN = {"validity": 0.975, "unique@10k": 0.999, "novelty": 0.842, "fcd_test": 0.073}


def snn(smiles: list[str], reference_fps, radius: int = 2, bits: int = 1024) -> float:
    """Mean over valid molecules of the highest Tanimoto similarity to the reference fingerprints."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from science.molecules.metrics import canonical

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    sims = [max(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(c)), reference_fps))
            for c in (canonical(s) for s in smiles) if c is not None]
    return float(np.mean(sims)) if sims else 0.0


def fingerprints(smiles: list[str], radius: int = 2, bits: int = 1024):
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    return [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


def quality(name: str, smiles: list[str], context: dict, seconds: float, nfe: float) -> dict:
    from science.molecules.metrics import canonical, internal_diversity, novelty, uniqueness, validity
    from science.molecules.rewards import score

    valid = [s for s in smiles if canonical(s) is not None]
    row = {"method": name, "samples": len(smiles), "validity": validity(smiles),
           "unique@1k": uniqueness(smiles[:1000]), f"unique@{len(smiles)}": uniqueness(smiles),
           "novelty": novelty(valid, context["train"]), "int_div": internal_diversity(valid),
           "snn_test": snn(valid[:2000], context["test_fps"]), "seconds_per_molecule": seconds / len(smiles),
           "nfe_per_molecule": nfe}
    for split in ("test", "test_scaffolds"):
        row[f"fcd_{split}"] = float(context["fcd"](valid, context[split])) if len(valid) > 1 else float("nan")
    row["properties"] = {p: score(valid, p).tolist() for p in ("qed", "sa", "logp")}
    return row


def steering(gen, budgets: list[int], n: int, seed: int, candidates: list[int]) -> list[dict]:
    rows = []
    settings = [("unguided", "none", 0, 1)]
    for k in budgets:
        settings.append((f"best-of-n K={k}", "best-of-n", k, 1))
        settings += [(f"svdd K={k}" + ("" if m == DEFAULT_CANDIDATES else f" M={m}"), "svdd", k, m)
                     for m in candidates if m <= k]
    for name, guidance, k, m in settings:
        start = time.perf_counter()
        out = gen.sample(n, reward="qed" if guidance != "none" else None, guidance=guidance, reward_calls=max(k, 1),
                         candidates=m, generator=torch.Generator().manual_seed(seed))
        q = np.sort(out.rewards["qed"])[::-1]
        rows.append({"method": name, "guidance": guidance, "candidates": m, "reward_calls": out.reward_calls,
                     "nfe_per_molecule": out.network_evaluations, "validity": float(np.mean(out.valid)),
                     "mean_qed": float(q.mean()), "top10_qed": float(q[: max(1, n // 10)].mean()),
                     "seconds_per_molecule": (time.perf_counter() - start) / n})
        r = rows[-1]
        print(f"steer {name:18s} QED mean {r['mean_qed']:.3f} top10% {r['top10_qed']:.3f} validity "
              f"{r['validity']:.3f}  reward calls {r['reward_calls']:.0f}  NFE {r['nfe_per_molecule']:.0f}", flush=True)
    return rows


def targets(rows: list[dict], steer: list[dict], budgets: list[int]) -> dict:
    ours = next((r for r in rows if r["method"].startswith("MDLM") and r.get("default")), None)
    out = {}
    if ours is None:
        return out
    key = next(k for k in ours if k.startswith("unique@") and k != "unique@1k")
    out["validity >= 0.90"] = {"value": ours["validity"], "pass": ours["validity"] >= 0.90}
    out["uniqueness >= 0.95"] = {"value": ours[key], "pass": ours[key] >= 0.95}
    out["novelty >= 0.80"] = {"value": ours["novelty"], "pass": ours["novelty"] >= 0.80}
    rnn = next((r for r in rows if r["method"].startswith("CharRNN")), None)
    if rnn is not None:
        value = rnn["fcd_test"] - ours["fcd_test"]
        out["FCD/test <= CharRNN's (CharRNN - ours >= 0)"] = {"value": value, "pass": value >= 0}
    if not steer:
        return out
    base = next(r for r in steer if r["guidance"] == "none")
    for k in budgets:
        svdd = next(r for r in steer if r["method"] == f"svdd K={k}")
        bon = next(r for r in steer if r["method"] == f"best-of-n K={k}")
        value = svdd["mean_qed"] - base["mean_qed"]
        out[f"SVDD K={k} mean QED - unguided >= 0.10"] = {"value": value, "pass": value >= 0.10}
        value = svdd["mean_qed"] - bon["mean_qed"]
        out[f"SVDD K={k} mean QED - best-of-N >= 0"] = {"value": value, "pass": value >= 0}
        out[f"SVDD K={k} validity >= 0.90"] = {"value": svdd["validity"], "pass": svdd["validity"] >= 0.90}
    return out


def run(args) -> dict:
    from fcd_torch import FCD

    from science.molecules.generator import MoleculeGenerator
    from science.molecules.moses import read_split

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    test = [read_split("test")[i] for i in rng.choice(176_074, args.reference, replace=False)]
    scaffolds = [read_split("test_scaffolds")[i] for i in rng.choice(176_225, args.reference, replace=False)]
    context = {"train": frozenset(read_split("train")), "test": test, "test_scaffolds": scaffolds,
               "test_fps": fingerprints(test[:2000]), "fcd": FCD(device="cpu", n_jobs=1)}
    rows = []
    gen = MoleculeGenerator.from_pretrained(args.weights, device="cpu")
    for steps in args.steps:
        start = time.perf_counter()
        out = gen.sample(args.samples, num_inference_steps=steps, generator=torch.Generator().manual_seed(args.seed))
        rows.append(quality(f"MDLM {steps} steps", out.smiles, context, time.perf_counter() - start,
                            out.network_evaluations))
        rows[-1]["default"] = steps == len(gen.model.process)
        print_row(rows[-1])
    if args.charrnn and (Path(args.charrnn) / "config.json").is_file():
        from .charrnn import CharRNN
        from science.molecules.tokens import SmilesTokenizer

        rnn, tok = CharRNN.from_pretrained(args.charrnn), SmilesTokenizer()
        start = time.perf_counter()
        tokens = torch.cat([rnn.generate(min(1000, args.samples - i), torch.Generator().manual_seed(args.seed + i))
                            for i in range(0, args.samples, 1000)])
        smiles = [tok.decode(t) for t in tokens.tolist()]
        rows.append(quality("CharRNN (same budget)", smiles, context, time.perf_counter() - start, tok.length))
        print_row(rows[-1])
    steer = steering(gen, args.budgets, args.steer, args.seed, args.candidates) if args.steer > 0 else []
    return {"rows": rows, "steering": steer, "moses_charrnn_published": MOSES_CHARRNN,
            "targets": targets(rows, steer, args.budgets),
            "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}


def print_row(r: dict) -> None:
    print(f"{r['method']:24s} valid {r['validity']:.3f}  unique@1k {r['unique@1k']:.3f}  novelty {r['novelty']:.3f}  "
          f"IntDiv {r['int_div']:.3f}  FCD/test {r['fcd_test']:.3f}  FCD/scaf {r['fcd_test_scaffolds']:.3f}  "
          f"SNN {r['snn_test']:.3f}  {r['seconds_per_molecule'] * 1000:.1f} ms/mol", flush=True)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for ax, prop in zip(axes[:3], ("qed", "sa", "logp")):
        for r in result["rows"]:
            ax.hist(r["properties"][prop], bins=40, histtype="step", density=True, label=r["method"])
        ax.set_title(f"{prop} of valid molecules")
    axes[0].legend(fontsize=7)
    steer = result["steering"]
    lines = [("best-of-n", 1, "best-of-n", "s")] + [("svdd", m, f"svdd, {m} candidates", "o")
                                                     for m in sorted({r["candidates"] for r in steer
                                                                      if r["guidance"] == "svdd"})]
    for guidance, m, label, marker in lines:
        rows = [r for r in steer if r["guidance"] == guidance and r["candidates"] == m]
        axes[3].plot([r["reward_calls"] for r in rows], [r["mean_qed"] for r in rows], marker=marker, label=label)
    for base in (r for r in steer if r["guidance"] == "none"):
        axes[3].axhline(base["mean_qed"], color="gray", ls="--", label="unguided")
    axes[3].set_xscale("log")
    axes[3].set_xlabel("reward calls per molecule")
    axes[3].set_ylabel("mean QED")
    axes[3].legend()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.science.benchmark_molecules", __doc__)
    p.add_argument("--weights", default=str(DEFAULTS["weights"]), help="the MDLM model folder")
    p.add_argument("--charrnn", default=str(DEFAULTS["charrnn"]), help="the CharRNN folder ('' to skip)")
    p.add_argument("--steps", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--reference", type=int, default=10_000, help="test / test_scaffolds molecules for FCD, SNN")
    p.add_argument("--steer", type=int, default=200, help="molecules per steering row")
    p.add_argument("--budgets", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--candidates", type=int, nargs="+", default=[4, DEFAULT_CANDIDATES],
                   help="SVDD candidates per decision (rows; the generator's default is the target row)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "benchmark_molecules"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())
