"""The sandbox's readings of what Fuse's documentation leaves open.

Every place where the real service's behaviour is undocumented and the sandbox must still answer
something is one field of :class:`SandboxAssumptions`. The default is the sandbox's best reading;
the other value is the plausible alternative, so a client can be tested against both.
``docs/sandbox.md`` lists them all in one table.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

__all__ = ["SandboxAssumptions"]


@dataclass(frozen=True)
class SandboxAssumptions:
    """How the sandbox answers where Fuse's documentation is silent.

    :param bad_rows: ``"reject"``: one bad CSV row fails the whole ``bulk_queue`` upload with 400,
        naming the first bad row numbers (never the phone numbers). ``"skip"``: good rows are
        queued, bad rows dropped, and ``calls_queued`` is smaller than the row count.
    :param bom: ``"accept"``: a UTF-8 byte order mark at the start of the CSV is stripped.
        ``"reject"``: such a CSV is answered 400.
    :param destination_position: ``"any"``: the ``destination`` column may be anywhere in the header.
        ``"first"``: 400 unless ``destination`` is the first column.
    :param queue_response: ``"call_id"``: ``queue`` answers ``{"call_id": "ID"}`` plus a ``Link``
        header. ``"link_only"``: the body is ``{"calls_queued": 1}`` and only the ``Link`` header
        names the call.
    :param empty_csv: a header row with no data rows. ``"zero"``: 200 with ``calls_queued`` 0.
        ``"reject"``: 400.
    :param header_case: ``"exact"``: the column must be named exactly ``destination``.
        ``"insensitive"``: case and surrounding spaces of header names are ignored.
    :param past_end: an ``end_timestamp`` not later than the sandbox's current time. ``"reject"``: 400.
        ``"accept"``: queued; the calls fail when the simulation sees the closed window.
    :param call_details_types: ``"strings"``: ``call_details`` numbers are strings and the phone
        number carries its own single quotes, as in the documented sample. ``"native"``: JSON
        integers and a bare phone number.
    :param cancel_scope: which calls ``DELETE .../cancel`` cancels. ``"unfinished"``: every call not
        yet completed, failed or canceled, including one being dialled or connected.
        ``"waiting"``: only calls waiting for their first or next attempt; calls in progress finish.
    :param is_pci: ``"accept"``: ``is_pci=1`` is allowed for every account. ``"forbid"``: the account
        has no secure-environment access and ``is_pci=1`` is answered 403.
    :param max_rows: ``None``: no row limit (none is documented). An integer: a CSV with more data
        rows is answered 400.
    """

    bad_rows: Literal["reject", "skip"] = "reject"
    bom: Literal["accept", "reject"] = "accept"
    destination_position: Literal["any", "first"] = "any"
    queue_response: Literal["call_id", "link_only"] = "call_id"
    empty_csv: Literal["zero", "reject"] = "zero"
    header_case: Literal["exact", "insensitive"] = "exact"
    past_end: Literal["reject", "accept"] = "reject"
    call_details_types: Literal["strings", "native"] = "strings"
    cancel_scope: Literal["unfinished", "waiting"] = "unfinished"
    is_pci: Literal["accept", "forbid"] = "accept"
    max_rows: int | None = None

    def __post_init__(self) -> None:
        for name, choices in self.choices().items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"SandboxAssumptions.{name} must be one of {choices}, not {value!r}")
        if self.max_rows is not None and (not isinstance(self.max_rows, int) or self.max_rows < 0):
            raise ValueError("SandboxAssumptions.max_rows must be None or a non-negative integer")

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """Map each two-way switch (every field but ``max_rows``) to its allowed values, default first."""
        hints = typing.get_type_hints(cls)
        result: dict[str, tuple[str, ...]] = {}
        for field in dataclasses.fields(cls):
            if typing.get_origin(hints[field.name]) is Literal:
                allowed = typing.get_args(hints[field.name])
                default = str(field.default)
                result[field.name] = (default, *(str(a) for a in allowed if a != default))
        return result

    def as_dict(self) -> dict[str, str | int | None]:
        """The switches as a plain dict (for the inspection API)."""
        return dataclasses.asdict(self)
