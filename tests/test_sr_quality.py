"""Quality smoke test of the SHIPPED models on held-out validation photos (never trained on)."""

import pytest

from restore import SuperResolutionPipeline
from restore.sr.data import validation_pairs
from restore.sr.degradations import bicubic_up
from restore.sr.metrics import psnr_y

PHOTOS = ("coffee", "grace_hopper")  # validation photos available without opencv-doc


@pytest.fixture(scope="module")
def pipe():
    return SuperResolutionPipeline.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def pairs():
    items = [p for p in validation_pairs("bicubic", crop=256) if p["name"] in PHOTOS]
    assert [p["name"] for p in items] == list(PHOTOS)
    return [(p["cond"].add(1).div(2), p["x0"].add(1).div(2)) for p in items]


def test_shipped_models_are_trained_and_recorded(pipe):
    assert pipe.student is not None and pipe.teacher is not None
    assert pipe.student.adapter_names == ["pixel", "detail"]


def test_one_step_beats_bicubic_on_validation_photos(pipe, pairs):
    for lr, hr in pairs:
        out = pipe(lr, one_step=True)
        gain = psnr_y(out, hr) - psnr_y(bicubic_up(lr, 4).clamp(0, 1), hr)
        assert gain > 0.3, f"one-step gain over bicubic only {gain:.2f} dB"
        assert pipe.last_run.network_evaluations == 1


def test_teacher_beats_bicubic_and_tiling_is_seamless(pipe, pairs):
    lr, hr = pairs[0]
    out = pipe(lr, one_step=False, steps=4, deterministic=True)
    assert psnr_y(out, hr) > psnr_y(bicubic_up(lr, 4).clamp(0, 1), hr)
    whole = pipe(lr, tile=0)
    tiled = pipe(lr, tile=32, tile_overlap=8)
    assert pipe.last_run.tiles > 1
    assert psnr_y(tiled, whole, border=0) > 38  # tiled ~= untiled
