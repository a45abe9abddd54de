"""The install comes from the lock: requirements/*.txt agree with pyproject.toml and with each other, and the
environment the tests run in is the lock's, package for package (`make install`, `make install-spark`).

No network: the locks are read as files and the environment through importlib.metadata. Each check returns its
problems as sentences; the tests further down feed it altered copies of the real data to show it finds them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import sysconfig
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_DIR = ROOT / "requirements"
BUILD_IN = LOCK_DIR / "build.in"
# Each lock file and the extras of pyproject.toml it installs: base (production), dev (`make install`), spark
# (`make install-spark`). Each is resolved within the one before it (Makefile, `make lock`).
LOCK_EXTRAS = {"base.txt": (), "dev.txt": ("dev",), "spark.txt": ("dev", "spark")}
PROJECT = "cprof"
# The packages pinned exactly in pyproject.toml, each with its reason beside it (issue 29).
EXACT = {
    "dagster",
    "dagster-webserver",
    "dagster-dbt",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "great-expectations",
    "pandas",
    "pyspark",
    "dbt-spark",
}


@dataclasses.dataclass(frozen=True)
class Locked:
    """One entry of a lock: `name==version [; marker]` and its hashes, at a line of a file."""

    name: str  # canonical (PEP 503)
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]
    where: str  # file:line

    def applies(self) -> bool:
        """Whether this entry is installed on this platform and Python."""
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Locked]:
    """The entries of a hashed requirements file as `uv pip compile --generate-hashes` writes it."""
    entries: list[Locked] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip().removesuffix("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash="):
            if not entries:
                raise ValueError(f"{path.name}:{number}: a hash before any requirement")
            entries[-1] = dataclasses.replace(
                entries[-1], hashes=(*entries[-1].hashes, text.split("=", 1)[1])
            )
            continue
        req = Requirement(text)
        (spec,) = list(req.specifier) or [None]
        if spec is None or spec.operator != "==" or "*" in spec.version:
            raise ValueError(f"{path.name}:{number}: {text!r} is not pinned with == to one version")
        entries.append(
            Locked(canonicalize_name(req.name), spec.version, req.marker, (), f"{path.name}:{number}")
        )
    return entries


def project_requirements(pyproject: Mapping, extras: Iterable[str]) -> list[Requirement]:
    """What a lock installing these extras must hold: the dependencies, the extras', and what installs the
    project (requirements/build.in: pip and the build backend, pyproject.toml's [build-system])."""
    texts = list(pyproject["project"]["dependencies"])
    for extra in extras:
        texts += pyproject["project"]["optional-dependencies"][extra]
    texts += pyproject["build-system"]["requires"]
    lines = (line.split("#", 1)[0].strip() for line in BUILD_IN.read_text().splitlines())
    texts += [line for line in lines if line]
    return [Requirement(text) for text in texts]


def by_name(entries: Iterable[Locked]) -> dict[str, list[Locked]]:
    found: dict[str, list[Locked]] = {}
    for entry in entries:
        found.setdefault(entry.name, []).append(entry)
    return found


def lock_problems(pyproject: Mapping, locks: Mapping[str, list[Locked]]) -> list[str]:
    """Every direct requirement in each lock at a version its specifier admits, every entry hashed, every exact
    pin an exact pin, and each lock holding the versions of the one it was resolved within."""
    problems = []
    dependencies = pyproject["project"]["dependencies"] + [
        text for extra in pyproject["project"]["optional-dependencies"].values() for text in extra
    ]
    pins = {canonicalize_name(req.name): req for req in map(Requirement, dependencies)}
    for name in sorted(EXACT):
        spec = list(pins[name].specifier) if name in pins else []
        if len(spec) != 1 or spec[0].operator != "==":
            problems.append(f"pyproject.toml: {name} is not pinned exactly (==): {pins.get(name)}")
    for file, extras in LOCK_EXTRAS.items():
        locked = by_name(locks[file])
        for req in project_requirements(pyproject, extras):
            name = canonicalize_name(req.name)
            if name not in locked:
                problems.append(f"{file}: {req} (pyproject.toml or build.in) is not in the lock: make lock")
            for entry in locked.get(name, []):
                if not req.specifier.contains(entry.version, prereleases=True):
                    problems.append(f"{entry.where}: {name}=={entry.version} is outside {req}: make lock")
        problems += [f"{entry.where}: {entry.name} has no hash" for entry in locks[file] if not entry.hashes]
    for within, wider in itertools.pairwise(LOCK_EXTRAS):
        narrow, broad = by_name(locks[within]), by_name(locks[wider])
        for name, entries in narrow.items():
            versions = sorted(entry.version for entry in entries)
            if versions != sorted(entry.version for entry in broad.get(name, [])):
                problems.append(
                    f"{wider}: {name} {[e.version for e in broad.get(name, [])]} differs from {within}'s "
                    f"{versions}: make lock"
                )
    return problems


def site_packages() -> list[str]:
    """The environment's own package directories. Not sys.path: importing setuptools (distutils' shim does, when
    pyspark imports distutils) appends setuptools' `_vendor` folder to it, whose vendored copies carry dist-info
    of their own but are not installed packages (in the full suite, this test saw autocommand, jaraco.* and others
    as "installed")."""
    return sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})


def installed_versions() -> dict[str, str]:
    """Canonical name -> version of every distribution in the environment's site-packages."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=site_packages()):
        versions.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    return versions


def environment_problems(entries: Iterable[Locked], installed: Mapping[str, str]) -> list[str]:
    """The environment holds exactly the lock's packages for this platform, at the lock's versions."""
    wanted = {entry.name: entry for entry in entries if entry.applies()}
    problems = []
    for name, entry in sorted(wanted.items()):
        if name not in installed:
            problems.append(f"{entry.where}: {name}=={entry.version} is not installed: make install")
        elif installed[name] != entry.version:
            problems.append(
                f"{entry.where}: {name} is {installed[name]}, the lock says {entry.version}: make install"
            )
    for name in sorted(set(installed) - set(wanted) - {PROJECT}):
        problems.append(f"{name} {installed[name]} is installed but not in the lock: make install")
    return problems


def closure_problems(
    roots: Iterable[Requirement], entries: Iterable[Locked], requires: Mapping[str, list[str]]
) -> list[str]:
    """The lock for this platform is exactly what its roots require, followed through `requires` (each
    installed package's Requires-Dist): nothing missing, nothing left over from a dependency removed."""
    needed: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [(req, "") for req in roots]
    problems = []
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        needed.add(name)
        for wanted in ["", *(canonicalize_name(e) for e in req.extras)]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            if name not in requires:
                problems.append(f"{name} is required but not installed")
                break
            todo += [(Requirement(text), wanted) for text in requires[name]]
    locked = {entry.name for entry in entries if entry.applies()}
    problems += [f"{name} is required but not in the lock: make lock" for name in sorted(needed - locked)]
    problems += [
        f"{name} is in the lock but nothing requires it: make lock" for name in sorted(locked - needed)
    ]
    return problems


def installed_requires() -> dict[str, list[str]]:
    requires: dict[str, list[str]] = {}
    for dist in importlib.metadata.distributions(path=site_packages()):
        requires.setdefault(canonicalize_name(dist.metadata["Name"]), list(dist.requires or []))
    return requires


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def locks() -> dict[str, list[Locked]]:
    return {file: read_lock(LOCK_DIR / file) for file in LOCK_EXTRAS}


def environment_lock() -> str:
    """The lock this environment was installed from: spark's once `make install-spark` ran, else dev's."""
    return "spark.txt" if "pyspark" in installed_versions() else "dev.txt"


# --- the real lock and environment -----------------------------------------------------------------------------


def test_the_locks_agree_with_pyproject_and_with_each_other(pyproject, locks):
    assert lock_problems(pyproject, locks) == []


def test_the_environment_is_the_lock(locks):
    file = environment_lock()
    assert environment_problems(locks[file], installed_versions()) == []


@pytest.mark.parametrize("file", list(LOCK_EXTRAS))
def test_each_lock_is_what_pyproject_requires_nothing_more(pyproject, locks, file):
    """Each lock for this platform is the closure of pyproject.toml's requirements (and build.in's) through the
    installed packages' metadata: a dependency dropped from pyproject.toml without `make lock` is found here."""
    if file == "spark.txt" and environment_lock() != "spark.txt":
        pytest.skip("the spark extra is not installed (make install-spark)")
    roots = project_requirements(pyproject, LOCK_EXTRAS[file])
    assert closure_problems(roots, locks[file], installed_requires()) == []


# --- each check finds what it is for ---------------------------------------------------------------------------


def test_lock_problems_finds_a_version_outside_a_pin_a_missing_package_a_hashless_entry(pyproject, locks):
    altered = {file: list(entries) for file, entries in locks.items()}
    dev = altered["dev.txt"]
    dagster = next(i for i, entry in enumerate(dev) if entry.name == "dagster")
    dev[dagster] = dataclasses.replace(dev[dagster], version="1.13.26")
    altered["spark.txt"] = [entry for entry in altered["spark.txt"] if entry.name != "plotly"]
    base = altered["base.txt"]
    pandas = next(i for i, entry in enumerate(base) if entry.name == "pandas")
    base[pandas] = dataclasses.replace(base[pandas], hashes=())
    loose = {**pyproject, "project": {**pyproject["project"]}}
    loose["project"]["dependencies"] = [
        "duckdb>=2" if text.startswith("duckdb") else text for text in pyproject["project"]["dependencies"]
    ]
    problems = "\n".join(lock_problems(loose, altered))
    assert f"{dev[dagster].where}: dagster==1.13.26 is outside dagster==1.13.27" in problems
    assert "dev.txt: dagster ['1.13.26'] differs from base.txt's ['1.13.27']" in problems
    assert "spark.txt: plotly<8,>=6 (pyproject.toml or build.in) is not in the lock" in problems
    assert "spark.txt: dagster ['1.13.27'] differs from dev.txt's ['1.13.26']" in problems
    assert "spark.txt: plotly [] differs from dev.txt's" in problems
    assert "pandas has no hash" in problems
    assert "pyproject.toml: duckdb is not pinned exactly (==): duckdb>=2" in problems
    assert len(problems.splitlines()) == 7, problems


def test_environment_problems_finds_a_changed_a_missing_and_an_extra_package(locks):
    file = environment_lock()
    installed = installed_versions()
    installed["duckdb"] = "1.1.3"
    del installed["pandas"]
    installed["dagster-duckdb"] = "0.29.27"
    problems = environment_problems(locks[file], installed)
    assert len(problems) == 3, problems
    assert problems[0].endswith(": duckdb is 1.1.3, the lock says 2.0.1: make install")
    assert problems[1].endswith(": pandas==3.1.1 is not installed: make install")
    assert problems[2] == "dagster-duckdb 0.29.27 is installed but not in the lock: make install"


def test_closure_problems_finds_a_leftover_and_a_missing_package(pyproject, locks):
    roots = project_requirements(pyproject, LOCK_EXTRAS["dev.txt"])
    without_jinja = [entry for entry in locks["dev.txt"] if entry.name != "jinja2"]
    assert closure_problems(roots, without_jinja, installed_requires()) == [
        "jinja2 is required but not in the lock: make lock"
    ]
    no_ruff = [req for req in roots if req.name != "ruff"]
    assert closure_problems(no_ruff, locks["dev.txt"], installed_requires()) == [
        "ruff is in the lock but nothing requires it: make lock"
    ]


def test_read_lock_refuses_an_entry_not_pinned_to_one_version(tmp_path):
    lock = tmp_path / "dev.txt"
    lock.write_text("duckdb==2.0.1 \\\n    --hash=sha256:00\npandas>=3\n")
    with pytest.raises(ValueError, match=r"dev.txt:3: 'pandas>=3' is not pinned with == to one version"):
        read_lock(lock)


def third_party_imports(folders: Iterable[str]) -> dict[str, set[str]]:
    """Every top-level module imported in ``folders`` (also inside functions) that is neither ours nor the
    standard library, with the files importing it."""
    import ast
    import sys

    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in (
                        "pipelines",
                        "data_checks",
                        "__future__",
                    ):
                        found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_package_the_code_imports_is_declared(pyproject):
    """A package imported by pipelines/ or data_checks/ is a dependency of pyproject (the spark extra's for the
    Spark engine), not only something another dependency happens to bring: a release of that one that drops it
    would break the import."""
    declared = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["dependencies"]}
    spark = {
        canonicalize_name(Requirement(r).name) for r in pyproject["project"]["optional-dependencies"]["spark"]
    }
    distributions = importlib.metadata.packages_distributions()
    # Modules of the spark extra's packages, which this environment may not have installed.
    spark_modules = {"pyspark": "pyspark", "py4j": "py4j"}
    undeclared = []
    for module, files in sorted(third_party_imports(("pipelines", "data_checks")).items()):
        names = {canonicalize_name(d) for d in distributions.get(module, [])} or {
            spark_modules.get(module, module)
        }
        engine_only = all(f.startswith("pipelines/engines/spark_") for f in files)
        if not names & (declared | (spark if engine_only else set())):
            undeclared.append(f"{module} (imported by {', '.join(sorted(files))})")
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)
