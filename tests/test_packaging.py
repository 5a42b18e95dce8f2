"""What a user installs: one version everywhere, typed, licensed, only the dependencies the provider
needs at runtime, and — in CI — the wheel, not the source tree."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import sysconfig
import warnings
from importlib.metadata import (
    Distribution,
    distribution,
    distributions,
    packages_distributions,
    requires,
    version,
)
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import airflow_provider_fuse
from airflow_provider_fuse.get_provider_info import get_provider_info

#: Set by `make test-wheel`, which runs this suite against the installed wheel from outside the tree.
INSTALLED = os.environ.get("FUSE_TEST_INSTALLED_WHEEL") == "1"
PACKAGE_DIR = Path(airflow_provider_fuse.__file__).resolve().parent


def test_the_version_is_defined_once_and_read_everywhere():
    from airflow_provider_fuse.hooks.fuse import FuseHook

    assert version("airflow-provider-fuse") == airflow_provider_fuse.__version__
    assert get_provider_info()["versions"] == [airflow_provider_fuse.__version__]
    hook = FuseHook()
    assert f"airflow-provider-fuse/{airflow_provider_fuse.__version__} " in hook_user_agent(hook)


def hook_user_agent(hook) -> str:
    os.environ.setdefault(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        '{"conn_type": "fuse", "login": "a@b.c", "password": "k-123456", "host": ""}',
    )
    return hook.session.headers["User-Agent"]


def test_the_package_is_typed():
    assert (PACKAGE_DIR / "py.typed").is_file()


@pytest.mark.skipif(not INSTALLED, reason="only under `make test-wheel`")
def test_the_package_under_test_is_the_installed_wheel():
    assert "site-packages" in PACKAGE_DIR.parts, PACKAGE_DIR
    assert not (PACKAGE_DIR.parent / "pyproject.toml").exists()


def airflow_providers_get() -> dict:
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run(
        [airflow, "providers", "get", "airflow-provider-fuse", "--full", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    (info,) = json.loads(line)
    return info


def test_airflow_providers_get_shows_the_version_and_everything_listed_imports():
    info = airflow_providers_get()
    assert info["versions"][0] == airflow_provider_fuse.__version__
    modules = [
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(kind, [])
        for module in entry.get("python-modules", [])
    ]
    modules += [entry["hook-class-name"].rpartition(".")[0] for entry in info["connection-types"]]
    assert modules
    for name in modules:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(PACKAGE_DIR), name


#: What a worker, the triggerer and the dag-processor install with the provider (issue 12).
RUNTIME = {
    "apache-airflow",
    "apache-airflow-providers-common-compat",
    "requests",
    "requests-toolbelt",
    "httpx",
    # The results table (airflow_provider_fuse/results/table.py): any DbApiHook database.
    "apache-airflow-providers-common-sql",
    # The results receiver (already required by Airflow's core).
    "fastapi",
    # Numbering-plan time zones for calling hours (airflow_provider_fuse/calling_hours.py).
    "phonenumbers",
}
SANDBOX = {"fastapi", "uvicorn", "python-multipart"}


def installed() -> Distribution:
    """The provider's metadata as pip installed it from the built wheel (editable or not); the
    source tree's ``*.egg-info``, also on ``sys.path`` here, is setuptools' scratch copy."""
    (dist,) = distributions(name="airflow-provider-fuse", path=[sysconfig.get_paths()["purelib"]])
    return dist


def requirements() -> list[Requirement]:
    return [Requirement(line) for line in installed().requires or ()]


def declared(extra: str | None = None) -> set[str]:
    """The distributions the installed metadata requires: unconditionally, or for ``extra`` only."""
    if extra is None:
        return {canonicalize_name(r.name) for r in requirements() if r.marker is None}
    return {
        canonicalize_name(r.name)
        for r in requirements()
        if r.marker is not None and r.marker.evaluate({"extra": extra})
    }


def test_the_provider_requires_only_what_it_needs_at_runtime():
    assert declared() == RUNTIME


def test_the_sandbox_is_an_extra_and_the_test_extra_pulls_it_in():
    assert declared("sandbox") == SANDBOX
    (itself,) = [
        r
        for r in requirements()
        if r.name == "airflow-provider-fuse" and r.marker.evaluate({"extra": "test"})
    ]
    assert itself.extras == {"sandbox"}


def module_level_imports(path: Path, *, lazy: bool = False) -> set[str]:
    """The absolute imports a module runs when it is imported: not those inside functions, nor
    those under ``if TYPE_CHECKING:``. With ``lazy``, those inside functions (and classes) too:
    every import the module may ever run."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.add(child.module)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]))
            elif lazy or isinstance(child, ast.If | ast.Try | ast.ExceptHandler):
                visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def third_party_imports(*, lazy: bool = False) -> set[str]:
    """The imports of the provider (the sandbox, with its own extra, aside) that are neither the
    standard library's nor its own: at module level, or with ``lazy`` anywhere."""
    return {
        name
        for path in PACKAGE_DIR.rglob("*.py")
        if "sandbox" not in path.relative_to(PACKAGE_DIR).parts
        for name in module_level_imports(path, lazy=lazy)
        if name.partition(".")[0] not in sys.stdlib_module_names
        and name != "__future__"
        and not name.startswith("airflow_provider_fuse")
    }


def distribution_of(module: str) -> str:
    """The installed distribution whose files hold ``module``."""
    path = Path(importlib.import_module(module).__file__).resolve()
    for name in packages_distributions().get(module.partition(".")[0], ()):
        dist = distribution(name)
        root = Path(dist.locate_file("")).resolve()
        if path.is_relative_to(root) and any(
            str(file) == path.relative_to(root).as_posix() for file in dist.files or ()
        ):
            return canonicalize_name(name)
    raise AssertionError(f"no installed distribution holds {module}")


def test_every_import_the_provider_runs_is_a_declared_dependency():
    """httpx, common-compat, requests-toolbelt: each imported at module level, each declared.

    A dependency of a declared one (Airflow's core and task SDK, requests' urllib3) counts; the
    sandbox, with its own extra, does not take part.
    """
    transitive = {
        canonicalize_name(Requirement(line).name)
        for dependency in RUNTIME
        for line in requires(dependency) or ()
        if Requirement(line).marker is None
    }
    providers = {module: distribution_of(module) for module in sorted(third_party_imports())}
    assert {module: dist for module, dist in providers.items() if dist not in RUNTIME | transitive} == {}


def test_every_declared_dependency_is_imported_somewhere():
    """Nothing declared goes unused: each runtime dependency is imported by the provider, at module
    level or inside the function that needs it (``phonenumbers`` is imported only when calling hours
    are given). ``apache-airflow`` only gathers core and the task SDK. An optional import that is not
    installed here (PySocks, the FAB UI's widgets) cannot be what a declared dependency provides."""
    used = set()
    for module in sorted(third_party_imports(lazy=True)):
        # An optional module warns when its own extra is missing (urllib3's SOCKS support), then fails.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                used.add(distribution_of(module))
            except ImportError:
                continue
    assert RUNTIME - {"apache-airflow"} <= used


def test_an_import_inside_a_function_is_lazy_and_one_under_type_checking_is_never_run(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import eager\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import typed_only\nelse:\n    import untyped\n"
        "try:\n    import tried\nexcept ImportError:\n    import fallback\n"
        "def function():\n    import lazy\n"
        "class Class:\n    def method(self):\n        from lazy_too import name\n"
    )
    eager = {"eager", "typing", "untyped", "tried", "fallback"}
    assert module_level_imports(module) == eager
    assert module_level_imports(module, lazy=True) == eager | {"lazy", "lazy_too"}


def test_the_license_the_metadata_names_is_in_the_wheel():
    dist = installed()
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    text = dist.read_text("licenses/LICENSE")
    assert text is not None
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize(
    "category",
    [
        "airflow.exceptions.RemovedInAirflow4Warning",
        "airflow.exceptions.AirflowProviderDeprecationWarning",
        "airflow.utils.deprecation_tools.DeprecatedImportWarning",
    ],
)
def test_airflow_deprecations_are_errors_in_the_suite(category):
    module, _, name = category.rpartition(".")
    warning = getattr(importlib.import_module(module), name)
    with pytest.raises(warning):
        warnings.warn("deprecated", warning, stacklevel=1)


def test_a_warning_from_the_package_is_an_error_in_the_suite():
    with pytest.raises(UserWarning):
        warnings.warn_explicit(
            "ours", UserWarning, "hooks/fuse.py", 1, module="airflow_provider_fuse.hooks.fuse"
        )


# --- The version and the changelog -----------------------------------------------------------------

CHANGELOG = PACKAGE_DIR.parent / "CHANGELOG.md"


def version_disagreement(package_version: str, changelog: str) -> str | None:
    """Why ``package_version`` does not say what ``changelog`` says the package is; ``None``: it does.

    With anything under "Unreleased", the package is a development or pre-release of a version after
    the newest release listed; with nothing there, it is that release.
    """
    from packaging.version import InvalidVersion, Version

    try:
        current = Version(package_version)
    except InvalidVersion:
        return f"{package_version!r} is not a PEP 440 version"
    sections: list[tuple[str, list[str]]] = []
    for line in changelog.splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections and line.strip():
            sections[-1][1].append(line)
    names = [(title[1:].partition("]")[0], lines) for title, lines in sections if title.startswith("[")]
    released = [Version(name) for name, _ in names if name[:1].isdigit()]
    unreleased = [lines for name, lines in names if name.lower() == "unreleased"]
    latest = max(released, default=None)
    if unreleased and unreleased[0]:
        if not current.is_prerelease:
            return f"CHANGELOG has unreleased changes, so {current} must be a dev or pre-release"
        if latest is not None and Version(current.base_version) <= latest:
            return f"{current} is not a release of a version after {latest}, the newest in CHANGELOG"
        return None
    if latest is None or current != latest:
        return f"{current} is not the newest release in CHANGELOG ({latest})"
    return None


def test_the_version_says_what_the_changelog_says():
    if not CHANGELOG.is_file():
        pytest.skip("CHANGELOG.md is not beside the package (an installed wheel)")
    assert version_disagreement(airflow_provider_fuse.__version__, CHANGELOG.read_text()) is None


@pytest.mark.parametrize(
    ("package_version", "agrees"),
    [
        ("0.1.0", False),  # what main called itself with a large Unreleased section
        ("0.1.1.dev0", True),
        ("0.2.0.dev0", True),
        ("0.2.0rc1", True),
        ("0.1.0.dev0", False),  # a development release of what is already released
        ("0.2.0", False),  # claims a release the changelog does not list
        ("not a version", False),
    ],
)
def test_the_version_and_changelog_check_tells_them_apart(package_version, agrees):
    changelog = "# Changelog\n\n## [Unreleased]\n\n### Fixed\n- a fix\n\n## [0.1.0] - 2026-11-26\n\n- first\n"
    assert (version_disagreement(package_version, changelog) is None) is agrees


def test_a_released_changelog_needs_exactly_that_version():
    changelog = (
        "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2027-01-01\n\n- more\n\n## [0.1.0] - 2026-11-26\n"
    )
    assert version_disagreement("0.2.0", changelog) is None
    assert version_disagreement("0.2.1.dev0", changelog) is not None
    assert version_disagreement("0.1.0", changelog) is not None
