"""What the sandbox needs installed beyond the provider: the ``sandbox`` extra.

The provider itself runs without FastAPI, uvicorn or python-multipart, so they are not installed
with it on workers; ``pip install 'airflow-provider-fuse[sandbox]'`` adds them.
"""

from __future__ import annotations

import importlib

__all__ = ["INSTALL_HINT", "SandboxExtraMissing", "missing_requirements", "require_sandbox_extra"]

INSTALL_HINT = "pip install 'airflow-provider-fuse[sandbox]'"

#: Distribution name -> the module names it may be imported as (python-multipart renamed its module).
_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "fastapi": ("fastapi",),
    "uvicorn": ("uvicorn",),
    "python-multipart": ("python_multipart", "multipart"),
}


class SandboxExtraMissing(ImportError):
    """The sandbox was asked for without the packages of its extra; the message says what to install."""


def missing_requirements() -> list[str]:
    """The distributions of the ``sandbox`` extra that cannot be imported here, in a stable order."""
    missing = []
    for distribution, modules in _REQUIREMENTS.items():
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError:
                continue
            break
        else:
            missing.append(distribution)
    return missing


def require_sandbox_extra() -> None:
    """Return quietly when the sandbox can run.

    :raises SandboxExtraMissing: naming what is missing and :data:`INSTALL_HINT`.
    """
    missing = missing_requirements()
    if missing:
        raise SandboxExtraMissing(
            f"The Fuse sandbox needs {', '.join(missing)}, which the provider does not install on its"
            f" own: {INSTALL_HINT}"
        )
