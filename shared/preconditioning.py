"""EDM's preconditioning (Karras et al. 2022, Table 1) of the residual ``x0 - y``, on any residual path.

A residual path ``x_t = a_t x0 + (1 - a_t) y + s_t eps`` (ResShift, the OU SDE of SGMSE+, EDM's own
``a = 1``) is, in the variable ``u = (x_t - y) / a_t``, the variance-exploding process
``u = (x0 - y) + q_t eps`` with ``q_t = s_t / a_t``. With ``s_d`` the scale of the residual ``x0 - y``::

    c_in = 1 / sqrt(q^2 + s_d^2),   c_skip = s_d^2 / (q^2 + s_d^2),   c_out = q s_d / sqrt(q^2 + s_d^2)

    network input   c_in u
    x0_hat          y + c_skip u + c_out F
    loss weight     1 / c_out^2 = 1 / q^2 + 1 / s_d^2      (on |x0_hat - x0|^2)

so the backbone sees a unit-variance input and predicts a unit-variance target at every noise level:
at low noise ``x0_hat ~ x_t`` by construction (``c_skip -> 1``) instead of an identity the network has
to learn, at high noise ``x0_hat ~ y + c_out F``. This matters when the residual is small next to
``y`` (a regression mean's error, a few per cent of the field): without it, the network must resolve
``x_t - y`` from inputs of order one. ``c_skip u`` is the linear least-squares estimate of ``x0 - y``
from ``u`` when the residual has variance ``s_d^2``, and ``c_out`` that estimate's error.
"""

from __future__ import annotations

import torch

from .protocol import path_at


def residual_coefficients(a: torch.Tensor, s: torch.Tensor, sigma_data: float
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_in, c_skip, c_out)`` for path coefficients ``a``, ``s`` (tensors broadcasting against the data)."""
    q = s / a
    norm = torch.sqrt(q**2 + sigma_data**2)
    return 1 / norm, sigma_data**2 / norm**2, q * sigma_data / norm


def residual_input(sample: torch.Tensor, y: torch.Tensor, a: torch.Tensor, s: torch.Tensor,
                   sigma_data: float) -> torch.Tensor:
    """What the backbone sees: ``c_in (x_t - y) / a``."""
    c_in, _, _ = residual_coefficients(a, s, sigma_data)
    return c_in * (sample - y) / a


def residual_output(out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, a: torch.Tensor, s: torch.Tensor,
                    sigma_data: float) -> torch.Tensor:
    """``x0_hat = y + c_skip (x_t - y) / a + c_out F`` from the backbone's output ``F``."""
    _, c_skip, c_out = residual_coefficients(a, s, sigma_data)
    return y + c_skip * (sample - y) / a + c_out * out


def residual_weight(a: torch.Tensor, s: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM's loss weight ``lambda = 1 / c_out^2 = (a / s)^2 + 1 / s_d^2``."""
    return (a / s) ** 2 + 1 / sigma_data**2


def path_scales(process, timesteps, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_t, s_t)`` of a residual path (``process.path_coefficients``) broadcast against ``like``."""
    a, _, s = path_at(process, timesteps, like)
    return a, s
