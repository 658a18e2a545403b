"""Speech quality metrics at 16 kHz: PESQ wide-band, ESTOI and SI-SDR.

* PESQ (ITU-T P.862.2, wide-band) from the ``pesq`` package: 1.04 (bad) to 4.64 (clean).
* ESTOI (extended short-time objective intelligibility) from ``pystoi``: 0 to 1.
* SI-SDR (Le Roux et al. 2019), in dB::

      alpha = <s_hat, s> / |s|^2,    SI-SDR = 10 log10( |alpha s|^2 / |alpha s - s_hat|^2 )

  (both signals mean-removed), invariant to the estimate's scale.
"""

from __future__ import annotations

import numpy as np

from .spectral import SAMPLE_RATE


def si_sdr(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant signal-to-distortion ratio of ``estimate`` against ``reference`` (dB)."""
    s_hat = np.asarray(estimate, dtype=np.float64) - np.mean(estimate)
    s = np.asarray(reference, dtype=np.float64) - np.mean(reference)
    alpha = np.dot(s_hat, s) / (np.dot(s, s) + eps)
    target = alpha * s
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(target - s_hat, target - s_hat) + eps)))


def pesq_wb(estimate: np.ndarray, reference: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (MOS-LQO) of ``estimate`` against ``reference``."""
    from pesq import pesq

    return float(pesq(sample_rate, np.asarray(reference, dtype=np.float64),
                      np.asarray(estimate, dtype=np.float64), "wb"))


def estoi(estimate: np.ndarray, reference: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Extended STOI of ``estimate`` against ``reference``."""
    from pystoi import stoi

    return float(stoi(np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64),
                      sample_rate, extended=True))


def all_metrics(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """``{"pesq": ..., "estoi": ..., "si_sdr": ...}`` for one utterance at 16 kHz."""
    return {"pesq": pesq_wb(estimate, reference), "estoi": estoi(estimate, reference),
            "si_sdr": si_sdr(estimate, reference)}
