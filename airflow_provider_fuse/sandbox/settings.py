"""What one sandbox is: the account it accepts, its deployments, its clock and its limits.

:class:`SandboxSettings` is what :class:`~airflow_provider_fuse.sandbox.FuseService` is built from;
:class:`~airflow_provider_fuse.sandbox.FuseSandbox` and
:func:`~airflow_provider_fuse.sandbox.create_app` take it, or its fields as keywords
(:class:`SandboxOptions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

__all__ = ["DEFAULT_EMAIL", "DEFAULT_MAX_UPLOAD_BYTES", "SandboxOptions", "SandboxSettings"]

DEFAULT_EMAIL = "sandbox@example.com"
#: The largest request body the sandbox reads (256 MiB: above the benchmark's 5M-row CSV, ~230 MB).
DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class SandboxSettings:
    """One simulated Fuse account and how its sandbox behaves.

    :param email: the account login (HTTP Basic user name).
    :param developer_key: the Developer Key (HTTP Basic password); ``None``: a random token, made
        when the service is built.
    :param deployments: ``(application_id, deployment_id)`` pairs that exist.
    :param deleted_deployments: pairs that existed and were deleted (answered 409).
    :param assumptions: readings of undocumented behaviour (see ``docs/sandbox.md``).
    :param state_file: SQLite file to keep state in across restarts; ``None``: memory.
    :param time_scale: sandbox seconds per real second (60: a one-minute ``reattempt_wait`` takes 1 s).
    :param allow_external_callbacks: deliver ``result_url`` callbacks to non-loopback hosts too.
    :param max_upload_bytes: the largest ``/api`` request body read; a larger one is answered 413
        and nothing of it is stored.
    :raises ValueError: ``max_upload_bytes`` is not a positive whole number of bytes.
    """

    email: str = DEFAULT_EMAIL
    developer_key: str | None = None
    deployments: Iterable[tuple[int, int]] = ((101, 202),)
    deleted_deployments: Iterable[tuple[int, int]] = ()
    assumptions: SandboxAssumptions = field(default_factory=SandboxAssumptions)
    state_file: str | os.PathLike[str] | None = None
    time_scale: float = 1.0
    allow_external_callbacks: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        size = self.max_upload_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"max_upload_bytes must be a positive number of bytes, got {size!r}")
        # Any iterable of pairs in, a tuple of int pairs kept: the settings are a value.
        for name in ("deployments", "deleted_deployments"):
            pairs = tuple((int(app), int(dep)) for app, dep in getattr(self, name))
            object.__setattr__(self, name, pairs)
        if self.assumptions is None:  # the keyword style's "the defaults"
            object.__setattr__(self, "assumptions", SandboxAssumptions())


class SandboxOptions(TypedDict, total=False):
    """:class:`SandboxSettings`' fields as keywords (``FuseSandbox(time_scale=60)``)."""

    email: str
    developer_key: str | None
    deployments: Iterable[tuple[int, int]]
    deleted_deployments: Iterable[tuple[int, int]]
    assumptions: SandboxAssumptions | None
    state_file: str | os.PathLike[str] | None
    time_scale: float
    allow_external_callbacks: bool
    max_upload_bytes: int


def settings_from(settings: SandboxSettings | None, options: SandboxOptions) -> SandboxSettings:
    """``settings``, or the settings ``options`` name; not both.

    :raises TypeError: both were given.
    """
    if settings is None:
        return SandboxSettings(**options)  # type: ignore[arg-type]
    if options:
        raise TypeError(f"pass either settings or its fields as keywords, not both: {sorted(options)}")
    return settings
