"""Multi-node training, proven on one machine: two ``python -m experiments fit`` processes are two nodes.

Each process gets what a cluster launcher (SLURM, torchrun on every node, a Kubernetes job) would give a
node: ``MASTER_ADDR``/``MASTER_PORT`` of the rendezvous, its ``NODE_RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``. Both run the real entry point with ``--trainer.num_nodes=2 --trainer.devices=1
--trainer.strategy=ddp`` on the CPU (gloo, loopback only), each in its own working directory, as on nodes
that share no file system. A small callback (:class:`ShardProbe`, loaded by the child processes from this
file) writes what each rank saw; the test then checks that both ranks finished, that the distributed
sampler gave each its own shard of the data, and that the gradient all-reduce left identical weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).parent / "configs" / "tiny_sr.yaml"
PROBE_DIR = "FASTDIFF_MULTINODE_PROBE"   # where ShardProbe writes rank<N>.json
NODES, STEPS = 2, 3
DEADLINE_S = 300                           # both processes together; a normal run takes well under a minute here
# Variables by which Lightning would detect another cluster (SLURM, torchelastic, MPI, LSF, Kubeflow):
# the test must see only what it sets itself.
CLUSTER_PREFIXES = ("SLURM_", "TORCHELASTIC_", "OMPI_", "PMI_", "PMIX_", "LSB_", "KUBERNETES_")
CLUSTER_VARS = ("RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE",
                "MASTER_ADDR", "MASTER_PORT", "JSM_NAMESPACE_SIZE")


# ----------------------------------------------------------------------------- in the child processes
def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


def _weights_digest(module: torch.nn.Module) -> str:
    state = module.state_dict()
    return _digest(state[k] for k in sorted(state))


class _Recording(Dataset):
    """The training set, recording which index each item came from and a digest of its content."""

    def __init__(self, inner: Dataset, log: list):
        self.inner, self.log = inner, log

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        item = self.inner[index]
        self.log.append({"epoch": self.epoch, "index": int(index), "x0": _digest([item["x0"]])})
        return item

    epoch = 0


class ShardProbe(Callback):
    """Writes ``$FASTDIFF_MULTINODE_PROBE/rank<global rank>.json``: ranks, the items loaded, weight digests."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        # The datamodule's setup has run (Lightning calls it first); its train dataloader is built later.
        self.items: list[dict] = []
        trainer.datamodule.train_set = self.recording = _Recording(trainer.datamodule.train_set, self.items)

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = _weights_digest(pl_module)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.recording.epoch = trainer.current_epoch

    def on_train_end(self, trainer, pl_module) -> None:
        import torch.distributed as dist

        sampler = trainer.train_dataloader.sampler
        report = {
            "global_rank": trainer.global_rank, "node_rank": trainer.node_rank, "local_rank": trainer.local_rank,
            "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
            "strategy": type(trainer.strategy).__name__, "sampler": type(sampler).__name__,
            "backend": dist.get_backend() if dist.is_initialized() else None,
            "global_step": trainer.global_step, "items": self.items,
            "weights_start": self.start, "weights_end": _weights_digest(pl_module),
        }
        out = Path(os.environ[PROBE_DIR]) / f"rank{trainer.global_rank}.json"
        out.write_text(json.dumps(report))


# ----------------------------------------------------------------------------- the test
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_env(node_rank: int, port: int, probe: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARS and not k.startswith(CLUSTER_PREFIXES)}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        NODE_RANK=str(node_rank), WORLD_SIZE=str(NODES), LOCAL_RANK="0",
        **{PROBE_DIR: str(probe)},
    )
    if any(name == "lo" for _, name in socket.if_nameindex()):
        env["GLOO_SOCKET_IFNAME"] = "lo"   # gloo binds the loopback device, never another interface
    return env


def _launch(tmp_path: Path, port: int) -> tuple[list[int], list[Path], Path]:
    """Start both nodes; wait for both (a failure of one ends the other at once). Returns exit codes."""
    probe = tmp_path / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "experiments", "fit", "--config", str(CONFIG),
           f"--trainer.num_nodes={NODES}", "--trainer.devices=1", "--trainer.strategy=ddp",
           "--trainer.accelerator=cpu", f"--trainer.max_steps={STEPS}",
           "--trainer.callbacks+=test_multinode.ShardProbe"]
    procs, logs = [], []
    for rank in range(NODES):
        cwd = tmp_path / f"node{rank}"
        cwd.mkdir(exist_ok=True)
        log = cwd / "log.txt"
        with open(log, "w") as fh:
            procs.append(subprocess.Popen(cmd, cwd=cwd, env=_node_env(rank, port, probe), stdout=fh,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        logs.append(log)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:   # only the two processes started above
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
    return [p.returncode for p in procs], logs, probe


@pytest.mark.slow
def test_two_node_ddp_fit_through_the_cli(tmp_path):
    for attempt in range(2):   # the free port may be taken between the check and the rendezvous: retry once
        codes, logs, probe = _launch(tmp_path / f"try{attempt}", _free_port())
        tails = "\n".join(f"--- node {r} (exit {c}) ---\n{log.read_text()[-3000:]}" for r, (c, log) in
                          enumerate(zip(codes, logs)))
        if codes == [0, 0] or "address already in use" not in tails.lower():
            break
    assert codes == [0, 0], f"both nodes must finish within {DEADLINE_S} s\n{tails}"

    reports = [json.loads((probe / f"rank{r}.json").read_text()) for r in range(NODES)]
    for rank, rep in enumerate(reports):
        assert (rep["global_rank"], rep["node_rank"], rep["local_rank"]) == (rank, rank, 0)
        assert (rep["world_size"], rep["num_nodes"]) == (NODES, NODES)
        assert rep["strategy"] == "DDPStrategy" and rep["backend"] == "gloo"
        assert rep["sampler"] == "DistributedSampler"
        assert rep["global_step"] == STEPS

    # Each rank saw its own shard: within an epoch the indices are disjoint, and the first (complete)
    # epoch's shards cover the whole training set between them; no item content is shared.
    epoch_length = 8   # data.init_args.epoch_length in tests/configs/tiny_sr.yaml
    shards = [{(it["epoch"], it["index"]) for it in rep["items"]} for rep in reports]
    assert shards[0] and shards[1] and not shards[0] & shards[1], shards
    first = [{i for e, i in s if e == 0} for s in shards]
    assert first[0] | first[1] == set(range(epoch_length)) and len(first[0]) == len(first[1]) == epoch_length // 2
    contents = [{it["x0"] for it in rep["items"]} for rep in reports]
    assert not contents[0] & contents[1]

    # Different data, same weights: the gradients were all-reduced over the two nodes at every step.
    assert reports[0]["weights_start"] == reports[1]["weights_start"]
    assert reports[0]["weights_end"] == reports[1]["weights_end"]
    assert reports[0]["weights_end"] != reports[0]["weights_start"]

    # Rank 0 alone exported the model (to its own node's disk); it loads and records the step count.
    from shared.checkpoints import load_denoiser

    _, meta = load_denoiser(probe.parent / "node0" / "pretrained")
    assert meta["extra"]["training"]["global_step"] == STEPS
