"""science.molecules: tokenizer, rewards, metrics, the generator with a tiny random model, the CLI.
(Plumbing and closed forms; quality needs the trained model.)"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from science.molecules.cli import main  # noqa: E402
from science.molecules.generator import MoleculeGenerator  # noqa: E402
from science.molecules.metrics import evaluate, internal_diversity, novelty, uniqueness, validity  # noqa: E402
from science.molecules.rewards import FLOOR, logp, qed, resolve, sa, sa_raw, score  # noqa: E402
from science.molecules.tokens import LENGTH, SmilesTokenizer, TokenError  # noqa: E402
from shared.checkpoints import save_denoiser  # noqa: E402
from shared.denoiser import ConditionalDenoiser  # noqa: E402
from shared.masked_diffusion import MaskedDiffusion  # noqa: E402
from shared.transformer import TokenTransformer  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def user_reward(smiles: str) -> float:       # a module:function reward for the CLI tests
    return float(len(smiles))


def not_a_number(smiles: str):
    return "high"


@pytest.fixture(scope="module")
def tokenizer():
    return SmilesTokenizer()


def test_tokenizer_round_trip_on_moses(tokenizer):
    from science.molecules.moses import read_split

    try:
        smiles = read_split("test")[:2000]
    except FileNotFoundError:
        pytest.skip("molsets (MOSES data) is not installed")
    for s in smiles:
        ids = tokenizer.encode(s)
        assert len(ids) == LENGTH and tokenizer.decode(ids) == s


def test_tokenizer_errors_and_masks(tokenizer):
    assert tokenizer.split("ClCBr[nH]") == ["Cl", "C", "Br", "[nH]"]
    with pytest.raises(TokenError, match=r"\[N\+\]"):
        tokenizer.encode("C[N+](C)(C)C")
    with pytest.raises(TokenError, match="more than"):
        tokenizer.encode("C" * (LENGTH + 1))
    ids = tokenizer.encode("CCO")
    ids[1] = tokenizer.mask_index
    assert tokenizer.decode(ids) == "?" and validity([tokenizer.decode(ids)]) == 0.0
    assert SmilesTokenizer.from_config(tokenizer.config()).vocab == tokenizer.vocab


def test_selfies_tokenizer_round_trip_and_robustness():
    from science.molecules.metrics import canonical
    from science.molecules.moses import read_split
    from science.molecules.tokens import SelfiesTokenizer, tokenizer_from_config

    tok = SelfiesTokenizer()
    try:
        smiles = read_split("test")[:300]
    except FileNotFoundError:
        smiles = [ASPIRIN, "c1ccc2[nH]ccc2c1", "CC(C)(C)OC(=O)N1CCC(CO)CC1"]
    for s in smiles:
        ids = tok.encode(s)
        assert len(ids) == LENGTH and canonical(tok.decode(ids)) == canonical(s)
    g = torch.Generator().manual_seed(0)
    random_rows = torch.randint(1, tok.vocab_size - 1, (50, LENGTH), generator=g)   # no <pad>, no <mask>
    assert validity(tok.decode(row) for row in random_rows.tolist()) == 1.0        # SELFIES: always a molecule
    ids = tok.encode("CCO")
    ids[0] = tok.mask_index
    assert tok.decode(ids) == "?"
    assert isinstance(tokenizer_from_config(tok.config()), SelfiesTokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_config({"kind": "inchi"})


def test_rewards_on_known_molecules():
    assert qed(ASPIRIN) == pytest.approx(0.55, abs=0.01)
    assert sa_raw(ASPIRIN) == pytest.approx(1.58, abs=0.01)
    assert sa(ASPIRIN) == pytest.approx((10 - 1.58) / 9, abs=0.01)
    assert logp(ASPIRIN) == 1.0                                   # Crippen logP 1.31, inside [1, 3]
    from rdkit import Chem
    from rdkit.Chem import Crippen

    dodecane = Crippen.MolLogP(Chem.MolFromSmiles("CCCCCCCCCCCC"))       # above the window
    assert logp("CCCCCCCCCCCC") == pytest.approx(np.exp(-0.5 * (dodecane - 3.0) ** 2))
    assert logp("CCCCCCCCCCCC", high=dodecane + 1) == 1.0
    for fn in (qed, sa, logp):
        assert fn("C1CC") == FLOOR and fn("") == FLOOR


def test_reward_resolution_and_user_functions():
    assert resolve("qed")[1] is qed
    np.testing.assert_allclose(score([ASPIRIN, "bad"], f"{__name__}:user_reward"), [len(ASPIRIN), FLOOR])
    for spec, message in (("nope", "unknown reward"), ("no_such_module:f", "cannot import"),
                          (f"{__name__}:missing", "has no 'missing'"), (f"{__name__}:ASPIRIN", "not callable")):
        with pytest.raises(ValueError, match=message):
            resolve(spec)
    with pytest.raises(ValueError, match="not a number"):
        score([ASPIRIN], not_a_number)


def test_metrics_on_hand_made_lists():
    smiles = ["CCO", "OCC", "C1CC", "c1ccccc1", ASPIRIN, ""]    # a duplicate (two writings), two invalid
    assert validity(smiles) == pytest.approx(4 / 6)
    assert uniqueness(smiles) == pytest.approx(3 / 4)
    assert novelty(smiles, {"CCO"}) == pytest.approx(2 / 3)
    assert internal_diversity(["CCO", "CCO"]) == 0.0             # one distinct molecule
    assert 0 < internal_diversity(["CCO", "c1ccccc1"]) <= 1
    report = evaluate(smiles, reference={"CCO"})
    assert report["molecules"] == 6 and report["mean_qed"] > 0 and set(report) >= {"novelty", "mean_sa"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tokenizer):
    torch.manual_seed(0)
    net = TokenTransformer(tokenizer.vocab_size, length=LENGTH, width=32, layers=1, heads=2, dropout=0.0)
    model = ConditionalDenoiser(net, MaskedDiffusion(vocab_size=tokenizer.vocab_size, num_train_timesteps=8),
                                skip=0.0)
    folder = tmp_path_factory.mktemp("molecule_weights")
    save_denoiser(model, folder, extra={"task": "molecule_generation", "tokenizer": tokenizer.config()})
    return folder


@pytest.fixture(scope="module")
def gen(weights):
    return MoleculeGenerator.from_pretrained(weights, device="cpu")


def test_generator_unguided(gen):
    out = gen.sample(10, batch_size=4, generator=torch.Generator().manual_seed(1))
    assert len(out.smiles) == len(out.valid) == 10 and set(out.rewards) == {"qed", "sa", "logp"}
    assert out.network_evaluations == 8 and out.reward_calls == 0
    again = gen.sample(10, batch_size=4, generator=torch.Generator().manual_seed(1))
    assert again.smiles == out.smiles


@pytest.mark.parametrize("guidance, calls", [("svdd", 8), ("svdd", 3), ("best-of-n", 4)])
def test_generator_guidance_spends_the_budget(gen, guidance, calls):
    out = gen.sample(4, reward="qed", guidance=guidance, reward_calls=calls, candidates=4,
                     generator=torch.Generator().manual_seed(2))
    if guidance == "best-of-n":
        assert out.reward_calls == calls and out.network_evaluations == 8 * calls
    else:                                         # M = min(4, K) candidates at K // M guided steps
        m = min(4, calls)
        assert out.reward_calls == m * (calls // m)


def test_generator_errors(gen):
    from shared.files import InputError

    for kwargs, message in ((dict(n=0), "n must be"), (dict(n=2, guidance="svdd"), "needs a reward"),
                            (dict(n=2, guidance="greedy", reward="qed"), "unknown guidance"),
                            (dict(n=2, reward="nope", guidance="svdd"), "unknown reward")):
        with pytest.raises(InputError, match=message):
            gen.sample(**kwargs)
    with pytest.raises(InputError, match="no molecule model"):
        MoleculeGenerator.from_pretrained("/nonexistent", device="cpu")


def run(*args) -> int:
    return main([str(a) for a in args])


def test_cli_sample_and_score(tmp_path, weights, capsys):
    out = tmp_path / "mols.csv"
    assert run("sample", "-n", 6, "-o", out, "--weights", weights, "--device", "cpu", "--quiet",
               "--reward", f"{__name__}:user_reward", "--guidance", "best-of-n", "--reward-calls", 2) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and list(rows[0]) == ["smiles", "valid", "qed", "sa", "logp", "user_reward"]
    report = tmp_path / "report.json"
    assert run("score", out, "-o", report, "--no-novelty", "--quiet") == 0
    assert json.loads(report.read_text())["molecules"] == 6
    smi = tmp_path / "list.smi"
    smi.write_text(f"{ASPIRIN} aspirin\nCCO\n")
    assert run("score", smi, "-o", report, "--no-novelty") == 0
    assert "validity 1.000" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, weights, capsys):
    def error(*args, code=2) -> str:
        assert run(*args) == code
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        return err

    out = tmp_path / "o.csv"
    common = ("--weights", weights, "--device", "cpu", "--quiet")
    assert "unknown reward 'nope'" in error("sample", "-n", 2, "-o", out, "--reward", "nope", *common)
    assert "cannot import module" in error("sample", "-n", 2, "-o", out, "--reward", "nomod:f", *common)
    assert "needs --reward" in error("sample", "-n", 2, "-o", out, "--guidance", "svdd", *common)
    assert "must be a .csv" in error("sample", "-n", 2, "-o", tmp_path / "o.txt", *common)
    assert not out.exists()
    assert "no such file" in error("score", tmp_path / "missing.csv", "-o", tmp_path / "r.json")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\na,1\n")
    assert "no 'smiles' column" in error("score", bad, "-o", tmp_path / "r.json")
    (tmp_path / "empty.smi").write_text("\n")
    assert "no SMILES" in error("score", tmp_path / "empty.smi", "-o", tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_shipped_model_makes_molecule_like_samples():
    """Quality smoke test of the shipped model (science/molecules/weights/mdlm), 64 molecules at 32 steps:
    valid and unique, of drug-like size (MOSES: 21.6 heavy atoms on average), most with a ring."""
    from rdkit import Chem

    gen = MoleculeGenerator.from_pretrained(device="cpu")
    out = gen.sample(64, num_inference_steps=32, generator=torch.Generator().manual_seed(0))
    assert np.mean(out.valid) >= 0.8
    assert len(set(out.smiles)) >= 0.9 * 64
    mols = [Chem.MolFromSmiles(s) for s, ok in zip(out.smiles, out.valid) if ok]
    assert 12 <= np.mean([m.GetNumHeavyAtoms() for m in mols]) <= 32
    assert np.mean([m.GetRingInfo().NumRings() > 0 for m in mols]) >= 0.5
