"""Apache Airflow provider for Plum Fuse's outbound-calling API."""

from __future__ import annotations

__all__ = ["__version__"]

#: The one place the version is defined: package metadata, provider info and the User-Agent read it.
#: Between releases it is a development release of the next version (PEP 440 ``X.Y.Z.devN``), so a
#: wheel built from main never claims to be the last release; CHANGELOG.md's "Unreleased" section is
#: what it adds (tests/test_packaging.py checks that the two agree).
__version__ = "0.2.0.dev0"
