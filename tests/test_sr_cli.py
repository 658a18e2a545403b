"""restore.sr command line and Python API on odd inputs (tiny random-weight models: plumbing only)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from restore import SuperResolutionPipeline
from restore.sr.cli import main


def run(tiny_weights, *args):
    return main([*map(str, args), "--weights", str(tiny_weights), "--quiet", "--device", "cpu"])


def write(path: Path, arr: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), arr)
    return path


@pytest.fixture
def photo(rng):
    return (rng.random((20, 28, 3)) * 255).astype(np.uint8)


def test_rgb_png_one_step(tmp_path, tiny_weights, photo):
    src = write(tmp_path / "a.png", photo)
    assert run(tiny_weights, src, "-o", tmp_path / "out.png", "--one-step") == 0
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (80, 112, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("steps,det", [(4, False), (2, True), (1, False)])
def test_teacher_steps(tmp_path, tiny_weights, photo, steps, det):
    src = write(tmp_path / "a.jpg", photo)
    extra = ["--deterministic"] if det else []
    assert run(tiny_weights, src, "-o", tmp_path / "o.jpg", "--steps", steps, *extra) == 0
    assert cv2.imread(str(tmp_path / "o.jpg")).shape == (80, 112, 3)


def test_grey_rgba_16bit_and_odd_sizes(tmp_path, tiny_weights, rng):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "grey.png", (rng.random((13, 17)) * 255).astype(np.uint8))
    write(folder / "rgba.png", (rng.random((9, 11, 4)) * 255).astype(np.uint8))
    write(folder / "deep.png", (rng.random((10, 12, 3)) * 65535).astype(np.uint16))
    write(folder / "deep.tif", (rng.random((6, 10)) * 65535).astype(np.uint16))
    write(folder / "tiny.bmp", (rng.random((5, 7, 3)) * 255).astype(np.uint8))
    write(folder / "pic.webp", (rng.random((12, 15, 3)) * 255).astype(np.uint8))
    assert run(tiny_weights, folder, "-o", tmp_path / "out") == 0
    got = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (tmp_path / "out").iterdir()}
    assert got["grey.png"].shape == (52, 68) and got["grey.png"].dtype == np.uint8
    assert got["rgba.png"].shape == (36, 44, 4)
    assert got["deep.png"].shape == (40, 48, 3) and got["deep.png"].dtype == np.uint16
    assert got["deep.tif"].shape == (24, 40) and got["deep.tif"].dtype == np.uint16
    assert got["tiny.bmp"].shape == (20, 28, 3)
    assert got["pic.webp"].shape == (48, 60, 3)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_corrupt_file_in_folder_others_still_run(tmp_path, tiny_weights, photo, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "good.png", photo)
    (folder / "bad.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    assert run(tiny_weights, folder, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "bad.jpg" in err and "cannot decode" in err and "empty.png" in err and "2 file(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_missing_file_and_empty_folder(tmp_path, tiny_weights, capsys):
    assert run(tiny_weights, tmp_path / "nope.png", "-o", tmp_path / "o.png") == 2
    assert "nope.png: no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run(tiny_weights, tmp_path / "empty", "-o", tmp_path / "o") == 2
    assert "no supported files" in capsys.readouterr().err


def test_output_equal_to_input_is_refused(tmp_path, tiny_weights, photo, capsys):
    src = write(tmp_path / "a.png", photo)
    before = src.read_bytes()
    assert run(tiny_weights, src, "-o", src) == 2
    assert "overwrite an input" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert run(tiny_weights, tmp_path, "-o", tmp_path) == 2


def test_scale_2(tmp_path, tiny_weights, photo):
    """--scale 2: the x4 model's output box-averaged 2 x 2, written at twice the input size."""
    from PIL import Image

    src = write(tmp_path / "a.png", photo)
    assert run(tiny_weights, src, "-o", tmp_path / "o.png", "--scale", "2") == 0
    h, w = photo.shape[:2]
    assert Image.open(tmp_path / "o.png").size == (2 * w, 2 * h)


def test_bad_options(tmp_path, tiny_weights, photo, capsys):
    src = write(tmp_path / "a.png", photo)
    with pytest.raises(SystemExit) as done:                                   # argparse: one line, exit 2
        run(tiny_weights, src, "-o", tmp_path / "o.png", "--scale", "3")
    assert done.value.code == 2 and "invalid choice: 3" in capsys.readouterr().err
    assert run(tiny_weights, src, "-o", tmp_path / "o.png", "--steps", "9") == 2
    assert "1..4" in capsys.readouterr().err
    assert run(tiny_weights, src, "-o", tmp_path / "o.txt") == 2
    assert not (tmp_path / "o.png").exists()


def test_failed_write_leaves_nothing(tmp_path, tiny_weights, photo, monkeypatch):
    import restore.sr.images as images

    src = write(tmp_path / "a.png", photo)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(images.cv2, "imencode", boom)
    assert run(tiny_weights, src, "-o", tmp_path / "out.png") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_python_api_kinds_and_seed(tiny_weights, photo):
    pipe = SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")
    out = pipe(photo)
    assert isinstance(out, np.ndarray) and out.shape == (80, 112, 3) and out.dtype == np.uint8
    pil = pipe(Image.fromarray(photo).convert("L"))
    assert isinstance(pil, Image.Image) and pil.size == (112, 80) and pil.mode == "L"
    t = torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255
    tt = pipe(t, one_step=False, steps=4, seed=5)
    assert isinstance(tt, torch.Tensor) and tt.shape == (1, 3, 80, 112)
    torch.testing.assert_close(tt, pipe(t, one_step=False, steps=4, seed=5))
    assert not torch.allclose(tt, pipe(t, one_step=False, steps=4, seed=6))
    assert pipe.last_run.network_evaluations == 4


def test_python_api_rejects_bad_arrays(tiny_weights):
    from shared.files import InputError

    pipe = SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")
    with pytest.raises(InputError, match="NaN"):
        pipe(np.full((8, 8, 3), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="empty"):
        pipe(np.zeros((0, 8, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="unsupported image type"):
        pipe("photo.png")


def test_tiles_cover_large_input(tiny_weights, rng):
    pipe = SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")
    img = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    out = pipe(img, tile=16, tile_overlap=4)
    assert out.shape == (160, 200, 3)
    assert pipe.last_run.tiles == pipe.num_tiles(40, 50, 16, 4) > 1


def test_bad_device_is_one_line(tmp_path, photo, capsys):
    src = write(tmp_path / "a.png", photo)
    assert main([str(src), "-o", str(tmp_path / "o.png"), "--device", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: --device bogus: not a device (use auto, cpu, cuda, cuda:N or mps)"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, tiny_weights, photo, capsys):
    src = write(tmp_path / "a.png", photo)
    assert main([str(src), "-o", str(tmp_path / "o.png"), "--weights", str(tiny_weights), "--device", "cuda:1"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: --device cuda:1: CUDA is not available on this machine"]


def test_read_only_output_folder_fails_before_loading(tmp_path, photo, capsys, read_only_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.png", photo)
    # a missing weights folder would be the error if the models were loaded first
    code = main([str(folder), "-o", str(read_only_dir), "--weights", str(tmp_path / "nope"), "--device", "cpu"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {read_only_dir}: output folder is not writable"]


def test_pipeline_call_conventions(tiny_weights, rng):
    """diffusers-style arguments beside the older ones: steps pick the teacher, generator drives its noise,
    return_dict gives the run report, one_step with steps is refused rather than silently ignored."""
    from shared.files import InputError
    from shared.pipeline import PipelineOutput

    pipe = SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")
    img = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    pipe(img, steps=2, tile=0)
    assert pipe.last_run.network_evaluations == 2          # the teacher ran, not the student
    a = pipe(img, num_inference_steps=4, generator=torch.Generator().manual_seed(5), tile=0)
    b = pipe(img, num_inference_steps=4, generator=torch.Generator().manual_seed(5), tile=0)
    assert np.array_equal(a, b)
    out = pipe(img, return_dict=True, tile=0)
    assert isinstance(out, PipelineOutput) and out.run.network_evaluations == 1 and out.output.shape == (48, 48, 3)
    with pytest.raises(InputError, match="one_step"):
        pipe(img, one_step=True, steps=2)
    with pytest.raises(InputError, match="not both"):
        pipe(img, steps=2, num_inference_steps=3)


def test_pipeline_dtype(tiny_weights, rng):
    from shared.files import InputError

    pipe = SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu", torch_dtype="bfloat16")
    assert pipe.dtype == torch.bfloat16 and next(pipe.student.parameters()).dtype == torch.bfloat16
    img = (rng.random((8, 8, 3))).astype(np.float32)
    low = pipe(img, tile=0)
    full = pipe.to(dtype=torch.float32)(img, tile=0)
    assert low.dtype == np.float32 and np.abs(low - full).max() < 0.05
    with pytest.raises(InputError, match="dtype"):
        SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu", torch_dtype="int8")
