"""Quality smoke test of the shipped MRI models (4 steps and the one-step student): each beats
zero-filling by >= 2 dB PSNR on two slices of the validation subject (never trained on) at 4x,
single-coil. Needs the subject's Debian package (``make test`` installs it) and nibabel (the ``[train]``
extra, part of ``[dev]``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nibabel")

from restore.mri.volumes import available  # noqa: E402

pytestmark = pytest.mark.skipif(not available("itk_kmeans_t1"),
                                reason="the validation subject is missing: make test-data")


@pytest.mark.parametrize("one_step", [False, True], ids=["resshift-4", "one-step"])
def test_shipped_model_beats_zero_filled_by_2_db(one_step):
    from fastmri.evaluate import psnr

    from restore.mri.data import VAL_SIZE
    from restore.mri.pipeline import MRIReconstructionPipeline
    from restore.mri.simulate import simulate
    from restore.mri.volumes import split_slices

    torch.set_num_threads(1)
    pipe = MRIReconstructionPipeline.from_pretrained(device="cpu")
    stack = next(iter(split_slices("val", ("axial",), size=VAL_SIZE).values()))
    acqs = [simulate(stack[k], acceleration=4, mask="random", seed=i)
            for i, k in enumerate((len(stack) // 3, 2 * len(stack) // 3))]
    target = np.stack([a.target.abs().numpy() for a in acqs])
    zero_filled = np.stack([a.zero_filled().abs().numpy() for a in acqs])
    ours = np.stack([pipe(a.measured, a.mask, one_step=one_step, generator=torch.Generator().manual_seed(0)).numpy()
                     for a in acqs])
    assert psnr(target, ours) >= psnr(target, zero_filled) + 2.0
