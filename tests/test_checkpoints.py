"""Checkpoints are safetensors + JSON and round-trip exactly (up to float16 storage)."""

import json

import pytest
import torch

from shared.checkpoints import load_denoiser, read_meta, save_denoiser
from shared.student import OneStepStudent

from conftest import tiny_denoiser, tiny_student


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 32, 32, generator=g)
    y = torch.randn(1, 3, 32, 32, generator=g)
    cond = torch.randn(1, 3, 8, 8, generator=g)
    return x, y, cond


def test_denoiser_round_trip_float32(tmp_path):
    d = tiny_denoiser()
    save_denoiser(d, tmp_path / "m", extra={"scale": 4}, dtype=torch.float32)
    r, meta = load_denoiser(tmp_path / "m")
    x, y, cond = _inputs()
    t = torch.tensor([2])
    with torch.no_grad():
        torch.testing.assert_close(r(x, t, y, cond), d(x, t, y, cond))
    assert meta["extra"]["scale"] == 4
    assert r.unshuffle == 4 and r.skip == 1.0
    torch.testing.assert_close(r.process.etas, d.process.etas)


def test_files_are_safetensors_and_json_only(tmp_path):
    save_denoiser(tiny_denoiser(), tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").rglob("*") if p.is_file())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors", "model.json", "scheduler_config.json"]
    json.loads((tmp_path / "m" / "model.json").read_text())


def test_float16_storage_is_close(tmp_path):
    d = tiny_denoiser()
    save_denoiser(d, tmp_path / "m")  # float16 by default
    r, _ = load_denoiser(tmp_path / "m")
    x, y, cond = _inputs()
    t = torch.tensor([1])
    with torch.no_grad():
        torch.testing.assert_close(r(x, t, y, cond), d(x, t, y, cond), atol=5e-3, rtol=5e-3)


def test_student_round_trip(tmp_path):
    s = tiny_student()
    s.save_pretrained(tmp_path / "s")
    r, meta = OneStepStudent.from_pretrained(tmp_path / "s")
    assert [a["name"] for a in meta["extra"]["student"]["adapters"]] == ["pixel", "detail"]
    assert meta["extra"]["student"]["adapters"][0]["rank"] == 4
    _, y, cond = _inputs()
    for pix, detail in [(1.0, 1.0), (1.0, 0.0), (0.8, 0.5)]:
        a, _ = s(y, cond, pix, detail)
        b, _ = r(y, cond, pix, detail)
        torch.testing.assert_close(a, b, atol=5e-3, rtol=5e-3)


def test_missing_or_foreign_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        read_meta(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="unsupported checkpoint format"):
        read_meta(tmp_path)


def test_failed_save_leaves_no_partial_folder(tmp_path):
    d = tiny_denoiser()
    with pytest.raises(TypeError):
        save_denoiser(d, tmp_path / "m", extra={"bad": object()})
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []


def test_re_export_keeps_the_model_card(tmp_path):
    save_denoiser(tiny_denoiser(), tmp_path / "m")
    (tmp_path / "m" / "README.md").write_text("# card\n")
    save_denoiser(tiny_denoiser(seed=1), tmp_path / "m")
    assert (tmp_path / "m" / "README.md").read_text() == "# card\n"
    load_denoiser(tmp_path / "m")
