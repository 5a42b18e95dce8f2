"""Apache Airflow provider for Plum Fuse's outbound-calling API."""

from __future__ import annotations

__all__ = ["__version__"]

#: The one place the version is defined: package metadata, provider info and the User-Agent read it.
__version__ = "0.1.0"
