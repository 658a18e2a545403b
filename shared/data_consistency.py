"""Data consistency: keep every step's x0 estimate in agreement with linear measurements.

Measurements ``y = A x + n`` of a linear operator ``A`` (for example a masked Fourier transform
of an image, coil by coil). At every network evaluation the sampler's x0 estimate is moved
towards ``{x : A x = y}`` by one gradient step on ``1/2 ||A x - y||^2``::

    x0 <- x0 - eta A^H (A x0 - y)

* ``hard`` (``eta = 1``): when ``A = M U`` with ``U`` unitary and ``M`` a 0/1 mask (single-coil
  Cartesian sampling), this is the exact projection ``U^H [(1 - M) U x0 + M y]``: the measured
  entries are replaced by the data, the others kept (idempotent, ``A x0 = y`` afterwards).
* ``soft`` with trust ``lam`` (``eta = lam / (1 + lam)``): for ``A = M U`` the measured entries
  become ``(U x0 + lam y) / (1 + lam)``, the MAP estimate under Gaussian noise whose variance is
  ``1 / lam`` of the prior's; for noisy data.

With coil sensitivities (``A = M U S``, ``sum_c |S_c|^2 = 1``) the same step is SENSE-style data
consistency: a gradient step, exact on the measured entries only for a single coil.

:class:`DataConsistency` is a sampler callback (:mod:`shared.samplers`, :mod:`shared.consistency`):
one object gives every sampler data consistency at every step, applied to the x0 estimate before
the process's step uses it. Nothing here knows what ``x`` is: the operator brings that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch

from .samplers import Step

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LinearMeasurement:
    """Measurements ``y = A x``: the operator ``A``, its adjoint ``A^H`` and the data ``y``
    (in ``A``'s output space, zero where nothing was measured)."""

    forward: Operator
    adjoint: Operator
    measured: torch.Tensor

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``||A x - y|| / ||y||`` per batch item."""
        r = (self.forward(x) - self.measured).flatten(1).norm(dim=1)
        return r / self.measured.flatten(1).norm(dim=1).clamp_min(torch.finfo(r.dtype).tiny)


def step_size(trust: Optional[float]) -> float:
    """``eta`` of the gradient step: 1 for hard consistency (``trust=None``), else ``lam / (1 + lam)``."""
    if trust is None:
        return 1.0
    if not trust > 0:
        raise ValueError(f"trust must be > 0 (None: hard data consistency), got {trust}")
    return trust / (1.0 + trust)


def project(x: torch.Tensor, measurement: LinearMeasurement, trust: Optional[float] = None) -> torch.Tensor:
    """``x - eta A^H (A x - y)`` (see the module docstring)."""
    return x - step_size(trust) * measurement.adjoint(measurement.forward(x) - measurement.measured)


class DataConsistency:
    """Sampler callback: :func:`project` the x0 estimate of every step onto the measurements.

        dc = DataConsistency(LinearMeasurement(A, A_adjoint, y))        # hard
        x0, nfe = sample_posterior(denoise, process, y_cond, callback=dc)

    ``trust`` (``lam > 0``) makes it soft. ``then`` chains another callback after it.

    Samplers that return the last x0 estimate (ResShift's posterior and deterministic samplers, the
    DDPM solvers, the OU probability-flow sampler, consistency sampling) then end exactly on the
    data with hard consistency. SGMSE+'s predictor-corrector returns the last predictor *mean*, a
    step past the estimate: finish it with :meth:`project`.
    """

    def __init__(self, measurement: LinearMeasurement, trust: Optional[float] = None,
                 then: Optional[Callable[[Step], Optional[Step]]] = None):
        step_size(trust)   # checks it
        self.measurement, self.trust, self.then = measurement, trust, then

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`project` ``x`` with this object's measurements and trust."""
        return project(x, self.measurement, self.trust)

    def __call__(self, step: Step) -> Step:
        step = replace(step, x0_hat=self.project(step.x0_hat))
        if self.then is not None:
            step = self.then(step) or step
        return step
