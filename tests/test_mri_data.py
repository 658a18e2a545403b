"""restore.mri training data: the real volumes (registry, orientation, slices, split by volume) and
the simulated acquisitions (phase, coils, masks, noise) that feed ``cartesian_measurement``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.mri import volumes as V

pytest.importorskip("fastmri")


def needs(name: str):
    """Skip unless volume ``name`` and nibabel are installed (the reason names the install command)."""
    reason = None
    try:
        V.volume_path(name)
        V._nibabel()
    except V.VolumeUnavailable as err:
        reason = str(err)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


# ---------------------------------------------------------------- volumes


@pytest.mark.parametrize("name", list(V.VOLUMES))
def test_volume_loads_canonical_normalised(name):
    pytest.importorskip("nibabel")
    try:
        V.volume_path(name)
    except V.VolumeUnavailable as err:
        pytest.skip(str(err))
    vol = V.load_volume(name)
    assert vol.shape == V.VOLUMES[name].shape
    assert vol.dtype == np.float32
    assert vol.min() == 0.0 and vol.max() == 1.0
    assert (vol == 1.0).mean() < 0.01          # the 99.5th percentile of the foreground: few clipped
    assert (vol > 0.05).mean() > 0.1           # not an empty or mis-scaled volume


@needs("itk_kmeans_t1")
def test_anisotropic_volume_is_reoriented_and_resampled():
    nib = pytest.importorskip("nibabel")
    raw = nib.load(V.volume_path("itk_kmeans_t1"))
    assert nib.aff2axcodes(raw.affine) == ("L", "S", "A") and raw.shape == (128, 128, 62)
    # canonical RAS: the 3 mm anterior axis (62 voxels) moves to axis 1 and is resampled to 2 mm
    assert V.load_volume("itk_kmeans_t1").shape == (128, 93, 128)
    assert V.VOLUMES["itk_kmeans_t1"].native_plane == "coronal"


@needs("colin27")
def test_ras_volume_is_the_file_scaled():
    nib = pytest.importorskip("nibabel")
    raw = nib.load(V.volume_path("colin27"))
    assert nib.aff2axcodes(raw.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(V.load_volume("colin27"), V.normalise(np.asarray(raw.dataobj)))


def test_normalise_percentile():
    data = np.concatenate([np.zeros(1000), np.arange(1, 1001)]).astype(np.float32)
    out = V.normalise(data)
    scale = np.percentile(np.arange(1, 1001), 99.5)
    np.testing.assert_allclose(out[1000:1500], np.arange(1, 501) / scale, rtol=1e-6)
    assert out.max() == 1.0 and out[:1000].max() == 0.0


def test_missing_package_message_names_the_install_command():
    with pytest.raises(V.VolumeUnavailable, match="make data") as err:
        V._debian_file(V.Path("/nonexistent"), "ch2.nii.gz", "mricron-data")()
    assert "\n" not in str(err.value) and "mricron-data" in str(err.value)
    with pytest.raises(V.VolumeUnavailable, match=r"pip install"):
        V._nilearn_file("datasets/data/no_such_template.nii.gz")()
    with pytest.raises(KeyError):
        V.volume_path("no_such_volume")


# ---------------------------------------------------------------- slices


def marked_volume():
    """(9, 11, 13) RAS volume: a brain-like box, plus a marker at high R, A, S."""
    vol = np.zeros((9, 11, 13), np.float32)
    vol[2:7, 3:9, 4:10] = 0.5
    vol[6, 8, 9] = 1.0
    return vol


@pytest.mark.parametrize("orientation,count,shape", [
    ("sagittal", 5, (12, 10)), ("coronal", 6, (12, 8)), ("axial", 6, (10, 8))])
def test_slices_counts_even_sizes(orientation, count, shape):
    s = V.slices(marked_volume(), orientation)
    assert s.shape == (count, *shape) and s.dtype == np.float32     # empty slices dropped, odd sides trimmed
    assert V.slices(marked_volume(), orientation, 16).shape == (count, 16, 16)   # zero-padded
    assert V.slices(marked_volume(), orientation, (4, 6)).shape == (count, 4, 6)  # centre-cropped


def test_slices_display_convention():
    top_right = {o: np.argwhere(V.slices(marked_volume(), o, min_foreground=0.0) == 1.0)[0]
                 for o in V.ORIENTATIONS}
    # the marker is superior (axial: anterior), so near the top row; R / A grow to the right
    assert tuple(top_right["axial"]) == (9, 11 - 1 - 8, 6)
    assert tuple(top_right["coronal"]) == (8, 13 - 1 - 9, 6)
    assert tuple(top_right["sagittal"]) == (6, 13 - 1 - 9, 8)


def test_slices_reject_bad_arguments():
    with pytest.raises(ValueError, match="orientation"):
        V.slices(marked_volume(), "oblique")
    with pytest.raises(ValueError, match="even"):
        V.slices(marked_volume(), "axial", 15)


@needs("itk_kmeans_t1")
@pytest.mark.parametrize("orientation", V.ORIENTATIONS)
def test_real_slices(orientation):
    vol = V.load_volume("itk_kmeans_t1")
    s = V.slices(vol, orientation)
    assert s.shape[1] % 2 == 0 and s.shape[2] % 2 == 0
    assert 0 < len(s) <= vol.shape[V.SLICE_AXIS[orientation]]
    assert ((s > 0.05).mean(axis=(1, 2)) >= 0.05).all()


def test_split_is_by_volume():
    train, val = set(V.SPLITS["train"]), set(V.SPLITS["val"])
    assert train and val and not train & val
    assert train | val <= set(V.VOLUMES)
    assert not {V.VOLUMES[n].subject for n in train} & {V.VOLUMES[n].subject for n in val}
    with pytest.raises(ValueError):
        V.split_names("test")


@needs("itk_kmeans_t1")
def test_split_slices():
    out = V.split_slices("val", size=128)
    assert set(out) == {("itk_kmeans_t1", o) for o in V.ORIENTATIONS}
    assert all(s.shape[1:] == (128, 128) for s in out.values())


# ---------------------------------------------------------------- simulation

S = pytest.importorskip("restore.mri.simulate")
from restore.mri.fourier import ifft2c  # noqa: E402
from shared.complex import channels_to_complex  # noqa: E402


@pytest.fixture(scope="module")
def magnitude():
    """A real 64x64 slice when a volume is installed, else a smooth synthetic one."""
    try:
        return V.slices(V.load_volume("itk_kmeans_t1"), "coronal", 64)[30]
    except V.VolumeUnavailable:
        pass
    u = np.linspace(-1, 1, 64)
    return np.clip(1 - (u[:, None] ** 2 + u[None] ** 2), 0, 1).astype(np.float32)


def fields(a):
    return [a.target, a.kspace, a.mask, a.measured] + ([] if a.maps is None else [a.maps])


def test_seeds_reproduce(magnitude):
    a, b = (S.simulate(magnitude, 4, "random", snr_db=20, seed=5) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(fields(a), fields(b)))
    c = S.simulate(magnitude, 4, "random", snr_db=20, seed=np.random.default_rng(5))
    d = S.simulate(magnitude, 4, "random", snr_db=20, seed=np.random.default_rng(5))
    assert all(torch.equal(x, y) for x, y in zip(fields(c), fields(d)))
    g, h = (S.simulate(magnitude, 8, "equispaced", seed=torch.Generator().manual_seed(5)) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(fields(g), fields(h)))
    e = S.simulate(magnitude, 4, "random", snr_db=20, seed=6)
    assert not torch.equal(a.target, e.target) and not torch.equal(a.mask, e.mask)


def test_target_is_magnitude_with_smooth_phase(magnitude):
    a = S.simulate(magnitude, None, seed=0)
    assert a.target.dtype == torch.complex64 and a.target.shape == magnitude.shape
    torch.testing.assert_close(a.target.abs(), torch.from_numpy(magnitude), atol=1e-6, rtol=1e-6)
    phase = S.smooth_phase((64, 64), np.random.default_rng(0), order=3, max_phase=np.pi)
    steps = np.abs(np.angle(np.exp(1j * np.diff(phase, axis=0))))
    assert steps.max() < 0.5     # smooth: well below pi per pixel, so no wraps between neighbours


def test_fully_sampled_kspace_inverts(magnitude):
    single = S.simulate(magnitude, None, seed=1)
    torch.testing.assert_close(ifft2c(single.kspace), single.target, atol=1e-5, rtol=0)
    assert single.maps is None and torch.equal(single.mask, torch.ones(64))
    pytest.importorskip("sigpy")
    multi = S.simulate(magnitude, None, coils=8, seed=1)
    torch.testing.assert_close(ifft2c(multi.kspace), multi.maps * multi.target, atol=1e-5, rtol=0)


@pytest.mark.parametrize("coils", [8, 16])
def test_coil_maps_normalised(magnitude, coils):
    pytest.importorskip("sigpy")
    a = S.simulate(magnitude, 4, coils=coils, seed=2)
    assert a.maps.shape == (coils, 64, 64) and a.maps.dtype == torch.complex64
    assert a.kspace.shape == (coils, 64, 64)
    torch.testing.assert_close(a.maps.abs().pow(2).sum(0), torch.ones(64, 64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("acceleration,kind", [(4, "random"), (8, "equispaced")])
def test_masks(magnitude, acceleration, kind):
    a = S.simulate(magnitude, acceleration, kind, seed=3)
    assert a.mask.shape == (64,) and set(a.mask.unique().tolist()) == {0.0, 1.0}
    assert a.mask[31:33].all()                                  # the autocalibration centre
    assert abs(a.mask.mean().item() - 1 / acceleration) < 0.1
    torch.testing.assert_close(a.measured, a.mask * a.kspace)


def zero_filled(a):
    op = a.operator()
    return channels_to_complex(op.adjoint(op.measured))[0, 0]


@pytest.mark.parametrize("coils", [None, 8])
def test_zero_filled_adjoint(magnitude, coils):
    if coils:
        pytest.importorskip("sigpy")
    full = S.simulate(magnitude, None, coils=coils, seed=4)
    torch.testing.assert_close(zero_filled(full), full.target, atol=1e-5, rtol=0)
    under = S.simulate(magnitude, 4, coils=coils, seed=4)
    zf = zero_filled(under)
    torch.testing.assert_close(zf, under.zero_filled())
    assert ((zf - under.target).norm() / under.target.norm()).item() > 0.05
    assert torch.equal(under.target, full.target)      # the mask stream leaves the image alone


@pytest.mark.parametrize("snr_db", [10.0, 30.0])
def test_noise_matches_snr(magnitude, snr_db):
    clean = S.simulate(magnitude, 4, seed=7)
    noisy = S.simulate(magnitude, 4, snr_db=snr_db, seed=7)
    noise = noisy.kspace - clean.kspace
    rms = clean.kspace.abs().pow(2).mean().sqrt().item()
    assert noisy.noise_std == pytest.approx(rms / 10 ** (snr_db / 20), rel=1e-6)
    measured = noise.abs().pow(2).mean().sqrt().item()          # 4096 samples: ~1.1 % sampling error
    assert measured == pytest.approx(noisy.noise_std, rel=0.05)
    assert 20 * np.log10(rms / measured) == pytest.approx(snr_db, abs=0.5)
    assert noise.real.std().item() == pytest.approx(noise.imag.std().item(), rel=0.1)
    torch.testing.assert_close(noisy.measured, noisy.mask * noisy.kspace)
    assert clean.noise_std == 0.0


def test_simulate_rejects_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        S.simulate(np.zeros((2, 8, 8), np.float32))
