"""Gridded-field downscaling (issue 15), CorrDiff-like: a regression network predicts the mean fine
field from the upsampled coarse one and a diffusion model generates the residual, as an ensemble.

In progress: so far the data and the scores.

* :mod:`.fields`: the real offline gridded fields as ``xarray.Dataset`` s (iris-sample-data's UM air
  temperature runs over North America and OSTIA sea-surface temperature; pvlib's global monthly Linke
  turbidity with the surface altitude), the block-mean coarsening of the perfect-model set-up, and the
  split by time or by longitude band;
* :mod:`.metrics`: CRPS of an ensemble (fair and plain), RMSE of the ensemble mean, the spread-skill
  ratio, the rank histogram and the radially averaged power spectrum.

Importing the package loads nothing heavy.
"""

from __future__ import annotations
