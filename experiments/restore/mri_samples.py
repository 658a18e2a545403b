"""Write the MRI sample files shipped in ``restore/samples`` (README examples, demo-style runs).

    python -m experiments.restore.mri_samples

From the validation subject (never trained on; Debian ``insighttoolkit5-examples``, Apache-2.0),
acquired as :mod:`restore.mri.simulate` does, in fastMRI's layout (:mod:`restore.mri.files`):

* ``mri_brain_4x.h5``: 3 axial slices, single-coil, 4x random mask;
* ``mri_brain_8x_8coil.h5``: 2 axial slices, 8 birdcage coils, 8x equispaced mask, **no** coil maps
  (the pipeline estimates them with ESPIRiT, as for most scanner files).

Each holds ``kspace`` (undersampled, complex64), ``mask`` ``(W,)``, the fully sampled magnitude
``reconstruction_rss`` (the reference, as in fastMRI's files) and attributes ``acceleration``,
``num_low_frequency``, ``source``. gzip-compressed (the unmeasured columns are zeros).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report import script_parser

OUT = Path(__file__).parents[2] / "restore" / "samples"
SAMPLES = {"mri_brain_4x.h5": dict(acceleration=4, mask="random", coils=None, slices=3),
           "mri_brain_8x_8coil.h5": dict(acceleration=8, mask="equispaced", coils=8, slices=2)}


def write_sample(path: Path, acceleration: int, mask: str, coils, slices: int, seed: int = 0) -> None:
    import h5py

    from restore.mri.coils import centre_lines
    from restore.mri.data import VAL_SIZE
    from restore.mri.masks import column_mask
    from restore.mri.simulate import simulate
    from restore.mri.volumes import split_slices

    stack = next(iter(split_slices("val", ("axial",), size=VAL_SIZE).values()))
    picks = np.linspace(0, len(stack) - 1, slices + 2).round().astype(int)[1:-1]
    full = [simulate(stack[k], acceleration=None, coils=coils, seed=seed + i) for i, k in enumerate(picks)]
    columns = column_mask(full[0].kspace.shape[-1], acceleration, mask, seed=seed).numpy()   # one mask per file
    kspace = np.stack([a.kspace.numpy() for a in full]) * columns
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("kspace", data=kspace.astype(np.complex64), compression="gzip", compression_opts=9)
        f.create_dataset("mask", data=columns.astype(np.float32))
        f.create_dataset("reconstruction_rss", data=np.stack([a.target.abs().numpy() for a in full]),
                         compression="gzip", compression_opts=9)
        f.attrs.update(acceleration=acceleration, num_low_frequency=centre_lines(columns),
                       source="ITK example T1 subject (Debian insighttoolkit5-examples, Apache-2.0), "
                              f"simulated {coils or 1}-coil {mask} {acceleration}x by restore.mri.simulate")
    tmp.replace(path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.mri_samples", __doc__)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    for name, spec in SAMPLES.items():
        write_sample(Path(args.out) / name, **spec)
        print(f"wrote {Path(args.out) / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
