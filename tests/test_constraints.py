"""The committed constraints (constraints/): every environment make builds resolves from them, so
they must pin everything the project and its tests need, exactly, and never the project itself."""

from __future__ import annotations

import re
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def airflow_versions_tested() -> list[str]:
    """The Airflow versions the Makefile tests (TESTED_AIRFLOW_VERSIONS, with the default's value)."""
    makefile = (ROOT / "Makefile").read_text()
    default = re.search(r"^DEFAULT_AIRFLOW_VERSION := (\S+)$", makefile, re.MULTILINE)
    tested = re.search(r"^TESTED_AIRFLOW_VERSIONS := (.+)$", makefile, re.MULTILINE)
    assert default, "the Makefile names its default Airflow version"
    assert tested, "the Makefile names its tested Airflow versions"
    return tested.group(1).replace("$(DEFAULT_AIRFLOW_VERSION)", default.group(1)).split()


def pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a constraints file; fails on a line that is not ``name==version``."""
    pinned: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one
        assert specifier.operator == "==", f"{path.name}:{number} is not pinned exactly"
        assert requirement.url is None, f"{path.name}:{number}"
        assert requirement.marker is None, f"{path.name}:{number}"
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"{path.name}:{number} pins {name} twice"
        pinned[name] = specifier.version
    return pinned


def files() -> list[Path]:
    found = sorted(CONSTRAINTS.glob("*.txt"))
    assert found, "constraints/ holds the committed constraints files"
    return found


@pytest.mark.parametrize("path", files(), ids=lambda path: path.name)
def test_every_line_pins_one_version_and_never_the_project_itself(path):
    pinned = pins(path)
    assert "airflow-provider-fuse" not in pinned  # the checkout or the wheel under test is installed
    for tool in ("pip", "setuptools", "build", "twine"):
        assert tool in pinned, f"{path.name} leaves {tool} floating"


def test_this_python_has_constraints_for_every_tested_airflow_and_the_deployment():
    for version in airflow_versions_tested():
        assert (CONSTRAINTS / f"airflow-{version}-python-{PYTHON}.txt").is_file()
    assert (CONSTRAINTS / f"deployment-python-{PYTHON}.txt").is_file()


@pytest.mark.parametrize("version", airflow_versions_tested())
def test_each_airflow_file_pins_its_airflow_and_every_requirement_of_the_project(version):
    """The project's own requirements and its extras' (test, sandbox, dev) are all pinned: nothing
    it names can move on a later day."""
    named = {
        canonicalize_name(Requirement(text).name)
        for text in requires("airflow-provider-fuse") or []
        if canonicalize_name(Requirement(text).name) != "airflow-provider-fuse"
    }
    for path in sorted(CONSTRAINTS.glob(f"airflow-{version}-python-*.txt")):
        pinned = pins(path)
        assert pinned["apache-airflow"] == version
        assert named - set(pinned) == set(), path.name


def test_the_deployment_files_pin_every_deployment_requirement_as_the_requirements_say():
    wanted = [
        Requirement(line)
        for line in (ROOT / "scripts" / "deployment-requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in sorted(CONSTRAINTS.glob("deployment-python-*.txt")):
        pinned = pins(path)
        for requirement in wanted:
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{path.name} does not pin {name}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), path.name


@pytest.mark.parametrize(
    "bounds", sorted((CONSTRAINTS / "bounds").glob("airflow-*.txt")), ids=lambda p: p.name
)
def test_the_constraints_of_an_airflow_version_keep_its_upper_bounds(bounds):
    """constraints/bounds/airflow-<version>.txt: releases known to break that Airflow stay out."""
    version = bounds.stem.removeprefix("airflow-")
    bounded = [
        Requirement(line)
        for line in bounds.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert bounded
    files = sorted(CONSTRAINTS.glob(f"airflow-{version}-python-*.txt"))
    assert files
    for path in files:
        pinned = pins(path)
        for requirement in bounded:
            name = canonicalize_name(requirement.name)
            assert requirement.specifier.contains(pinned[name], prereleases=True), path.name
