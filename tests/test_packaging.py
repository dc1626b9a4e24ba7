"""The wheel: what it ships, what its metadata declares, and that an installed copy works.

The wheel is built once per module, offline (``pip wheel --no-build-isolation`` with the
``hatchling`` of the test environment), installed with ``pip install --target`` into a temporary
folder, and imported from there in a child interpreter whose working directory is outside the
checkout, so that the installed files are tested, not the source tree.
"""

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

packaging_requirements = pytest.importorskip("packaging.requirements")
pytest.importorskip("hatchling")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Every pip call is offline and bounded in time: nothing here may hang a test run.
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
TIMEOUT_S = 120


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([*PIP, "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "--no-index", "-w", out])
    (path,) = out.glob("softjax-*.whl")
    return path


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def metadata(wheel, names):
    (path,) = (n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as archive:
        return HeaderParser().parsestr(archive.read(path).decode())


def test_wheel_ships_the_type_marker(names):
    assert "softjax/py.typed" in names


def test_wheel_ships_no_conftest(names):
    assert not [n for n in names if n.endswith("conftest.py")]


def test_wheel_ships_every_module_and_nothing_else(names):
    source = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "softjax").rglob("*.py")
        if p.name != "conftest.py" and "__pycache__" not in p.parts
    }
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == source
    assert "softjax/_engines/__init__.py" in shipped
    outside = [n for n in names if not n.startswith(("softjax/", "softjax-"))]
    assert not outside, f"the wheel ships files outside the package: {outside}"


def test_metadata_matches_pyproject(metadata):
    assert metadata["Name"] == PYPROJECT["name"]
    assert metadata["Version"] == PYPROJECT["version"]
    assert metadata["Requires-Python"] == PYPROJECT["requires-python"]

    def requirement(text):
        return packaging_requirements.Requirement(text)

    declared = [requirement(r) for r in metadata.get_all("Requires-Dist")]
    runtime = {str(r) for r in declared if r.marker is None or "extra" not in str(r.marker)}
    assert runtime == {str(requirement(r)) for r in PYPROJECT["dependencies"]}

    extras = PYPROJECT["optional-dependencies"]
    assert set(metadata.get_all("Provides-Extra")) == set(extras)
    optional = [r for r in declared if r.marker is not None and "extra" in str(r.marker)]
    for extra, requirements in extras.items():
        # Evaluated on Python 3.11, the oldest supported, where every line of every extra applies.
        environment = {"extra": extra, "python_version": "3.11", "python_full_version": "3.11.0"}
        provided = {r.name for r in optional if r.marker.evaluate(environment)}
        assert provided == {requirement(r).name for r in requirements}, extra


def test_chex_is_a_test_dependency_only(metadata):
    chex = [r for r in metadata.get_all("Requires-Dist") if r.startswith("chex")]
    assert chex and all("extra == 'test'" in r or 'extra == "test"' in r for r in chex), chex
    library = [p for p in (ROOT / "softjax").rglob("*.py") if "__pycache__" not in p.parts]
    importing = [p.name for p in library if "import chex" in p.read_text()]
    assert not importing, f"the library imports chex: {importing}"


CHECK_INSTALLED = """
import importlib.resources, importlib.util, json
import jax.numpy as jnp
import softjax
p = softjax.softargmax(jnp.array([1.0, 5.0, 5.0]), beta=jnp.inf)
q = softjax.softargmax(jnp.array([0.0, jnp.log(3.0)]), beta=1.0)
print(json.dumps({
    "file": softjax.__file__,
    "typed": importlib.resources.files("softjax").joinpath("py.typed").is_file(),
    "conftest": importlib.util.find_spec("softjax.conftest") is not None,
    "hard": p.tolist(),
    "soft": q.tolist(),
}))
"""


def test_installed_wheel_imports_and_computes(wheel, tmp_path):
    site = tmp_path / "site"
    _run([*PIP, "install", "--no-deps", "--no-index", "--target", site, wheel])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed copy comes first on the path; -P keeps the working directory off it, and the
    # working directory is outside the checkout in any case.
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = _run([sys.executable, "-P", "-c", CHECK_INSTALLED], cwd=elsewhere, env=env)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["file"]).resolve().is_relative_to(site.resolve()), found["file"]
    assert found["typed"] and not found["conftest"]
    assert found["hard"] == [0.0, 0.5, 0.5]
    assert found["soft"] == pytest.approx([0.25, 0.75], rel=1e-6)
