"""The super-resolution pipeline's input contract (issue 12): no silent wrong results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from restore import SuperResolutionPipeline
from restore.sr.cli import main
from restore.sr.images import read_image, write_image
from shared.files import InputError


@pytest.fixture(scope="module")
def pipe(tiny_weights):
    return SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")


@pytest.fixture
def photo(rng):
    return (rng.random((12, 16, 3)) * 255).astype(np.uint8)


def test_scale_2_is_the_x4_output_box_averaged(pipe, photo):
    """The API's x2: twice the size, equal to the x4 result averaged over 2 x 2 blocks (float pixels)."""
    import torch.nn.functional as F

    x = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
    four, two = pipe(x, seed=0), pipe(x, seed=0, scale=2)
    assert pipe.scales == [2, 4] and two.shape == (3, 24, 32)
    torch.testing.assert_close(two, F.avg_pool2d(four[None], 2)[0], atol=1e-5, rtol=0)
    assert pipe.bicubic(x, scale=2).shape == (3, 24, 32)
    with pytest.raises(ValueError, match="x2 or x4"):
        pipe(x, scale=3)


def test_input_errors_are_value_errors():
    assert issubclass(InputError, ValueError)


def test_uint8_tensor_is_read_as_0_to_255(pipe, photo):
    """torchvision's read_image gives uint8 CHW: same result as the numpy uint8 path, uint8 back."""
    as_numpy = pipe(photo, tile=0)
    out = pipe(torch.from_numpy(photo).permute(2, 0, 1).contiguous(), tile=0)
    assert out.dtype == torch.uint8 and out.shape == (3, 48, 64)
    assert torch.equal(out, torch.from_numpy(as_numpy).permute(2, 0, 1))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_float_pixels_outside_unit_range_are_refused(pipe, photo, kind):
    img = photo.astype(np.float32)                      # 0..255 floats: ambiguous, not silently white
    img = img if kind == "numpy" else torch.from_numpy(img).permute(2, 0, 1)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        pipe(img)


def test_float_rounding_slack_is_accepted(pipe, photo):
    img = photo.astype(np.float32) / 255
    img[0, 0, 0] = 1.0004
    assert pipe(img, tile=0).dtype == np.float32


def test_other_tensor_dtypes_are_refused(pipe, photo):
    with pytest.raises(InputError, match="uint8"):
        pipe(torch.from_numpy(photo.astype(np.int32)).permute(2, 0, 1))


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((12, 20, 3), dtype=np.uint8)
    stored[:3, :3] = 255                                # a mark at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6                                    # "rotate 90 CW to display"
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    planes = read_image(tmp_path / "phone.jpg")
    assert tuple(planes.rgb.shape) == (3, 20, 12)       # upright: portrait
    assert float(planes.rgb[:, :3, -3:].mean()) > 0.9   # the mark is now top-right
    assert float(planes.rgb[:, :3, :3].mean()) < 0.1
    pil = Image.open(tmp_path / "phone.jpg")
    assert pil.size == (20, 12)                         # the file itself is left as stored


def test_animated_images_are_refused(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, dtype=np.uint8)) for v in (0, 255)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="animated image with 2 frames"):
        read_image(tmp_path / "anim.png")


def test_grey_alpha_stays_grey_alpha(tmp_path, rng):
    la = (rng.random((8, 10, 2)) * 255).astype(np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "ga.png")
    planes = read_image(tmp_path / "ga.png")
    assert planes.grey and planes.alpha is not None
    write_image(tmp_path / "out.png", planes)
    assert Image.open(tmp_path / "out.png").mode == "LA"


def test_default_blend_is_the_pixel_adapter_alone_in_one_merged_evaluation(pipe, photo):
    """Issue 17: the default one-step output is ``pix=1, detail=0``; ``detail=1`` (PiSA-SR's blend) differs."""
    default = pipe(photo, return_dict=True)
    assert default.run.network_evaluations == 1 and pipe.student._merged == ("pixel",)
    np.testing.assert_array_equal(default.output, pipe(photo, pix=1.0, detail=0.0))
    with_detail = pipe(photo, detail=1.0, return_dict=True)
    assert with_detail.run.network_evaluations == 1 and pipe.student._merged == ("pixel", "detail")
    assert not np.array_equal(default.output, with_detail.output)


@pytest.mark.parametrize("pix, detail", [(-1.0, 1.0), (1.0, 7.0), (float("nan"), 1.0)])
def test_blend_weights_are_checked_by_api_and_cli(pipe, photo, tmp_path, pix, detail):
    with pytest.raises(InputError, match="must be in"):
        pipe(photo, pix=pix, detail=detail)
    Image.fromarray(photo).save(tmp_path / "a.png")
    # a missing weights folder would be the error if anything were loaded first
    code = main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "--pix", str(pix), "--detail",
                 str(detail), "--weights", str(tmp_path / "nope")])
    assert code == 2 and not (tmp_path / "o.png").exists()


def test_bad_tile_is_one_error_for_a_folder(tmp_path, photo, capsys):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(photo).save(tmp_path / name)
    assert main([str(tmp_path), "-o", str(tmp_path / "out"), "--tile", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: tile must be >= 0 (0 disables tiling), got -1"]


def test_deterministic_alone_means_the_same_in_api_and_cli(pipe, photo, tmp_path, tiny_weights):
    """``deterministic=True`` runs the teacher's deterministic sampler over all T steps in the API;
    the command line now does the same for ``--deterministic`` (it used to refuse it without --steps)."""
    Image.fromarray(photo).save(tmp_path / "a.png")
    code = main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "--deterministic", "--quiet",
                 "--weights", str(tiny_weights), "--device", "cpu"])
    assert code == 0
    api = pipe(photo, deterministic=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), api)


def test_one_step_with_deterministic_is_one_error_in_api_and_cli(pipe, photo, tmp_path, capsys):
    message = "one_step=True takes no steps and no deterministic sampler (those are the teacher's)"
    with pytest.raises(InputError) as err:
        pipe(photo, one_step=True, deterministic=True)
    assert str(err.value) == message
    Image.fromarray(photo).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "--one-step", "--deterministic"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


@pytest.mark.parametrize("module", ["restore.sr.cli", "audio.enhance"])
def test_ctrl_c_while_parsing_arguments_is_one_line(module, monkeypatch, capsys):
    """Ctrl-C before the run starts (here: inside argument parsing) ends with exit code 130 and one
    line, not a traceback."""
    import argparse
    import importlib

    from shared.cli import run_program

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", interrupt)
    with pytest.raises(SystemExit) as exit_:
        run_program(lambda: importlib.import_module(module).main(["x", "-o", "y"]))
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted"
