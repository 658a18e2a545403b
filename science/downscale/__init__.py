"""Gridded-field downscaling (issue 15), CorrDiff-like: a regression network predicts the mean fine
field from the upsampled coarse one and a diffusion model generates the residual, as an ensemble.

* :class:`Downscaler` (:mod:`.downscaler`): a coarse field (xarray, eager or dask-lazy) to a fine-grid
  ensemble with a ``member`` dimension, attributes kept; the diffusion stage is ResShift from the
  regression mean (ours) or EDM from noise (CorrDiff's recipe, :class:`shared.edm.EDMScheduler`);
  ``Downscaler.fit`` trains both stages on a user's dataset (:mod:`.fitting`);
* :mod:`.cli`: ``python -m science.downscale fit|predict`` (NetCDF and Zarr);
* :mod:`.fields`: the real offline gridded fields as ``xarray.Dataset`` s (iris-sample-data's UM air
  temperature runs over North America and OSTIA sea-surface temperature; pvlib's global monthly Linke
  turbidity with the surface altitude), the block-mean coarsening of the perfect-model set-up, and the
  split by time or by longitude band;
* :mod:`.data`: training patches (Lightning data module) for ``experiments/science/downscale_*.yaml``;
* :mod:`.metrics`: CRPS of an ensemble (fair and plain), RMSE of the ensemble mean, the spread-skill
  ratio, the rank histogram and the radially averaged power spectrum.

``from science.downscale import Downscaler`` (lazy: importing the package loads nothing heavy).
"""

from __future__ import annotations

from shared.lazy import lazy_attributes

__all__ = ["Downscaler"]
__getattr__ = lazy_attributes(__name__, {"Downscaler": ".downscaler"})
