"""Packaging: pyproject parses, dependencies match the imports, every shipped model has its card, licence.

Static and fast (an AST walk of the sources; import names are mapped to the distributions that provide
them with ``importlib.metadata.packages_distributions()``), plus one subprocess that imports the inference
modules with everything the base install lacks made absent (about 10 s, marked slow).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:   # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "fastdiff-suite"
FIRST_PARTY = {"shared", "restore", "audio", "science", "experiments"}
SOURCE_DIRS = ("shared", "restore", "audio", "science", "experiments")

#: What the default install must run: the inference entry points. Everything they import at module level
#: (followed through the project's own modules) must import with the base dependencies alone, and the
#: imports inside their functions (run at inference time: file formats, progress bars, resampling) too.
INFERENCE = (
    "restore", "restore.sr", "restore.sr.__main__", "restore.sr.pipeline", "restore.sr.cli", "restore.sr.images",
    "restore.sr.colorfix", "restore.sr.degradations", "restore.sr.demo",
    "audio", "audio.enhancer", "audio.enhance", "audio.spectral",
    "restore.mri", "restore.mri.__main__", "restore.mri.cli", "restore.mri.pipeline", "restore.mri.files",
    "restore.mri.fourier", "restore.mri.masks", "restore.mri.coils",
    "science", "science.molecules", "science.molecules.__main__", "science.molecules.cli",
    "science.molecules.generator", "science.molecules.rewards", "science.molecules.metrics",
    "science.molecules.tokens", "science.molecules.moses",
    "science.forecast", "science.forecast.__main__", "science.forecast.cli", "science.forecast.table",
    "science.forecast.forecaster", "science.forecast.windows", "science.forecast.baselines",
    "science.forecast.metrics", "science.forecast.series",
)
#: Declared but never imported by name, and why.
NOT_IMPORTED = {
    "jsonargparse": "LightningCLI's parser (experiments/__main__.py); the [signatures] extra reads docstrings",
    "nibabel": "restore.mri.volumes imports it under an ImportError guard that names the install command",
    "nilearn": "its wheel ships the MNI152 T1 template, read by path (restore.mri.volumes), never imported",
    "iris-sample-data": "science.forecast.series imports it (for its path to SOI_Darwin.nc) under an ImportError guard "
                        "that names the install command",
    "pvlib": "its wheel ships LinkeTurbidities.h5 and Altitude.h5, read by path (science.downscale.fields), never imported",
    "h5netcdf": "xarray's NetCDF-4 engine (engine=\"h5netcdf\" in science.downscale.fields), never imported by name",
    "dask": "xarray's chunked arrays: science.downscale.Downscaler.predict on dask-backed data (xr.apply_ufunc with "
            "dask=\"parallelized\", Dataset.chunk), used through xarray, never imported by name",
    "zarr": "xarray's Zarr backend (xr.open_zarr / Dataset.to_zarr in science.downscale.cli), never imported by name",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


@lru_cache(maxsize=None)
def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _extra(name: str | None, seen: frozenset = frozenset()) -> set[str]:
    """Distribution names installed by the base set (``None``) or by an extra, self-references followed."""
    project = _pyproject()["project"]
    reqs = project["dependencies"] if name is None else project["optional-dependencies"][name]
    out = set() if name is None else _extra(None)
    for req in reqs:
        if _req_name(req) == PROJECT:
            extras = re.search(r"\[([^\]]*)\]", req).group(1)
            for e in (x.strip() for x in extras.split(",")):
                if e not in seen:
                    out |= _extra(e, seen | {e})
        else:
            out.add(_req_name(req))
    return out


@lru_cache(maxsize=None)
def _providers() -> dict[str, set[str]]:
    return {mod: {_norm(d) for d in dists} for mod, dists in md.packages_distributions().items()}


def _module_path(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _is_optional(handler_types: list[ast.expr]) -> bool:
    names = {n.id for t in handler_types for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


@lru_cache(maxsize=None)
def _imports(path: Path) -> tuple[tuple[str, bool], ...]:
    """``(absolute module name, at module level)`` for every import in ``path``, relative ones resolved.
    Imports guarded by ``try: ... except ImportError`` (optional) and under ``if TYPE_CHECKING`` are left out."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Try) and any(_is_optional([h.type]) for h in node.handlers if h.type is not None):
            for child in node.orelse + node.finalbody:   # the guarded body is optional
                visit(child, top)
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, top)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name, top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
                found.append((mod, top))
                if not node.module:   # from . import x: x may be a module
                    found.extend((f"{base}.{a.name}", top) for a in node.names)
            else:
                found.append((node.module, top))
                found.extend((f"{node.module}.{a.name}", top) for a in node.names)
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for stmt in tree.body:
        visit(stmt, True)
    return tuple(found)


def _first_party(module: str) -> str | None:
    """The project module file behind ``module`` (or its longest existing prefix), else None."""
    parts = module.split(".")
    if parts[0] not in FIRST_PARTY:
        return None
    while parts:
        name = ".".join(parts)
        if _module_path(name).is_file():
            return name
        parts.pop()
    return None


def _third_party(module: str, local: frozenset = frozenset()) -> str | None:
    top = module.split(".")[0]
    if top in FIRST_PARTY or top in local or top in sys.stdlib_module_names or top == "__future__":
        return None
    return top


def _inference_modules() -> list[str]:
    shared = sorted(p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                    for p in (ROOT / "shared").rglob("*.py") if not p.relative_to(ROOT / "shared").as_posix().startswith("training"))
    return [m.removesuffix(".__init__") for m in shared] + list(INFERENCE)


def _inference_requirements() -> dict[str, set[str]]:
    """Third-party top-level import name -> the import chains that need it at inference time."""
    roots = _inference_modules()
    needs: dict[str, set[str]] = {}
    via: dict[str, str] = {}
    todo, seen = list(roots), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_path(module)
        assert path.is_file(), f"inference module {module} not found ({path})"
        chain = [module]
        while chain[-1] in via:
            chain.append(via[chain[-1]])
        for name, top in _imports(path):
            if (own := _first_party(name)) is not None:
                if top and own not in seen:
                    via.setdefault(own, module)
                    todo.append(own)
            elif (dist := _third_party(name)) is not None and (top or module in roots):
                needs.setdefault(dist, set()).add(" <- ".join(chain))
    return needs


def _all_imports(dirs) -> dict[str, set[str]]:
    needs: dict[str, set[str]] = {}
    for d in dirs:
        local = frozenset(p.stem for p in (ROOT / d).glob("*.py"))   # tests import conftest, each other
        for path in sorted((ROOT / d).rglob("*.py")):
            for name, _ in _imports(path):
                if (top := _third_party(name, local if d == "tests" else frozenset())) is not None:
                    needs.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return needs


def _check_declared(needs: dict[str, set[str]], declared: set[str], what: str) -> None:
    providers = _providers()
    missing = {}
    for mod, users in sorted(needs.items()):
        dists = providers.get(mod)
        if not dists:
            missing[mod] = f"not installed here (imported by {sorted(users)})"
        elif not dists & declared:
            missing[mod] = f"provided by {sorted(dists)}, imported by {sorted(users)}"
    assert not missing, f"imported but not in {what}:\n" + "\n".join(f"  {m}: {why}" for m, why in missing.items())


# ----------------------------------------------------------------------------- tests
def test_pyproject_parses_with_floors_and_no_pins():
    project = _pyproject()["project"]
    assert project["name"] == PROJECT and project["license"] == "MIT" and "LICENSE" in project["license-files"]
    assert set(project["optional-dependencies"]) >= {"train", "bench", "dev"}
    for req in project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]:
        if _req_name(req) == PROJECT:
            continue
        spec = re.sub(r"\[[^\]]*\]", "", req)
        assert ">=" in spec, f"{req}: every dependency states the floor CI tests"
        assert not re.search(r"(<|==|~=)", spec), f"{req}: no upper caps or pins (a known-bad release gets !=)"
    assert _extra("dev") >= _extra("train") | _extra("bench") | {"pytest"}


def test_inference_imports_only_base_dependencies():
    """The default install (no extras) runs the SR and speech pipelines and CLIs: no Lightning, no metrics."""
    _check_declared(_inference_requirements(), _extra(None), "the base dependencies (pyproject [project] dependencies)")


def test_every_import_is_declared_and_every_declaration_imported():
    _check_declared(_all_imports(SOURCE_DIRS), _extra("bench") | _extra("train"), "base, [train] or [bench]")
    _check_declared(_all_imports(["tests"]), _extra("dev"), "[dev]")
    providers = _providers()
    imported = {d for mod in _all_imports(SOURCE_DIRS + ("tests",)) for d in providers.get(mod, ())}
    unused = _extra("dev") - imported - set(NOT_IMPORTED)
    assert not unused, f"declared but never imported: {sorted(unused)} (drop them, or say why in NOT_IMPORTED)"


def _closure(dists: set[str]) -> set[str]:
    """``dists`` and everything they require (installed metadata; extras-only requirements left out)."""
    out, todo = set(), list(dists)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo.extend(_req_name(r) for r in reqs if "extra ==" not in r.replace("extra==", "extra =="))
    return out


# What a base install lacks is made absent in the child process both ways libraries look for it: ``None`` in
# sys.modules (``import`` raises ModuleNotFoundError, ``importlib.util.find_spec`` returns None) and no
# metadata (``importlib.metadata.version`` raises PackageNotFoundError, as lightning_utilities checks).
BLOCKER = """
import importlib.metadata as md, re, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
for name in BLOCKED:
    sys.modules[name] = None
from_name, distributions = md.Distribution.from_name.__func__, md.distributions
def hidden_from_name(cls, name):
    if norm(name) in ABSENT:
        raise md.PackageNotFoundError(name)
    return from_name(cls, name)
md.Distribution.from_name = classmethod(hidden_from_name)
md.distributions = lambda **kw: (d for d in distributions(**kw) if norm(d.metadata["Name"]) not in ABSENT)
for name in MODULES:
    __import__(name)
print("imported", len(MODULES))
"""


def _absent_in_a_base_install() -> tuple[list[str], list[str]]:
    """(distributions, top-level modules) installed here that a base install would not have."""
    base = _closure(_extra(None)) | {_norm(PROJECT), "pip", "setuptools", "wheel"}
    installed = {_norm(d.metadata["Name"]) for d in md.distributions()}
    absent = installed - base                  # the extras, and anything else this environment has
    blocked = sorted(mod for mod, dists in _providers().items() if not dists & base and dists & absent)
    return sorted(absent), blocked


@pytest.mark.slow
def test_inference_runs_without_the_extras():
    """Import every inference module in a process that sees only what the base dependencies install."""
    absent, blocked = _absent_in_a_base_install()
    assert {"lightning", "jsonargparse", "pesq", "pystoi", "matplotlib"} <= set(blocked)   # skimage: base, via fastmri
    modules = [m for m in _inference_modules() if not m.endswith("__main__")]   # __main__ would run the CLI
    code = f"BLOCKED = {blocked!r}\nABSENT = {set(absent)!r}\nMODULES = {modules!r}\n" + BLOCKER
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, ("an inference module needs a package that only the extras install "
                                 f"(absent here: {blocked}):\n{run.stderr[-3000:]}")


def _weights_folders() -> list[Path]:
    folders = {p.parent for d in SOURCE_DIRS for p in (ROOT / d).rglob("model.json")}
    return sorted(f for f in folders if (f / "backbone").is_dir())


def _shipped_from() -> dict[Path, str]:
    """Weights folder -> the export it is shipped from, as the Makefile's training targets copy it."""
    makefile = (ROOT / "Makefile").read_text()
    pairs = re.findall(r"\$\(call ship_weights,([^,\s]+),([^)\s]+)\)", makefile)
    return {ROOT / folder: export for export, folder in pairs if "$" not in export}


def _config_exporting(export: str) -> list[Path]:
    return [c for c in sorted(ROOT.glob("experiments/*/*.yaml"))
            if re.search(rf"^\s*export_dir:\s*{re.escape(export)}\s*$", c.read_text(), re.M)]


def test_every_weights_folder_has_a_model_card():
    folders = _weights_folders()
    assert len(folders) >= 7, folders
    shipped = _shipped_from()
    for folder in folders:
        rel = folder.relative_to(ROOT)
        card = folder / "README.md"
        assert card.is_file(), f"{rel}: no model card (README.md)"
        text = card.read_text()
        assert folder in shipped, f"{rel}: no Makefile target ships it (\\$(call ship_weights,EXPORT,{rel}))"
        configs = _config_exporting(shipped[folder])
        assert len(configs) == 1, f"{rel}: one experiment config should export {shipped[folder]}, found {configs}"
        config = str(configs[0].relative_to(ROOT))
        assert config in text, f"{rel}/README.md does not name its config {config}"
        assert f"python -m experiments fit --config {config}" in text, f"{rel}/README.md: no reproduce command"
        for heading in ("## Model", "## Training data", "## Reproduce", "## Measured", "## Limits"):
            assert heading in text, f"{rel}/README.md has no '{heading}' section"


def test_model_cards_ship_in_the_package():
    package_data = _pyproject()["tool"]["setuptools"]["package-data"]
    for folder in _weights_folders():
        rel = folder.relative_to(ROOT)
        package = rel.parts[0]
        covered = {p for pattern in package_data.get(package, []) for p in (ROOT / package).glob(pattern)}
        for f in ("README.md", "model.json", "backbone/config.json"):
            assert folder / f in covered, f"{rel}/{f} is not in [tool.setuptools.package-data] {package!r}"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_reshipping_weights_keeps_the_model_card(tmp_path):
    export, folder = tmp_path / "runs" / "x" / "pretrained", tmp_path / "weights" / "x"
    (export / "backbone").mkdir(parents=True)
    (export / "model.json").write_text("{\"new\": true}")
    (folder / "backbone").mkdir(parents=True)
    (folder / "model.json").write_text("{}")
    (folder / "old.safetensors").write_text("old")
    (folder / "README.md").write_text("# card\n")
    run = subprocess.run(["make", "-s", "-C", str(ROOT), "ship", f"FROM={export}", f"TO={folder}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (folder / "README.md").read_text() == "# card\n"
    assert (folder / "model.json").read_text() == "{\"new\": true}"
    assert not (folder / "old.safetensors").exists() and not Path(f"{folder}.new").exists()


def test_licence():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the fastdiff-suite authors" in text
