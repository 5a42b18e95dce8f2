"""The parameter tables in docs/operators.md stay in step with the code.

Adding a parameter without documenting it fails here, and so does a table that says a field is
templated when it is not (or the other way round), or gives another default.
"""

from __future__ import annotations

import inspect
import re
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_fuse.operators.fuse import (
    FuseBulkQueueOperator,
    FuseCancelCallsOperator,
    FuseQueueCallOperator,
)
from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = [FuseBulkQueueOperator, FuseQueueCallOperator, FuseCallStatusSensor, FuseCancelCallsOperator]


def parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters the provider's own classes add, up the class hierarchy."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_provider_fuse") or "__init__" not in vars(klass):
            continue
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if name != "self" and parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                found.setdefault(name, parameter)
    return found


def table(markdown: str, heading: str) -> list[dict[str, str]]:
    """The first table after ``heading``, as rows of column name → cell."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for line in section.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break  # the first table ends here
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def rows_by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    by_name = {}
    for row in rows:
        for name in re.findall(r"`(\w+)`", row["parameter"]):
            assert name not in by_name, f"{name} is documented twice"
            by_name[name] = row
    return by_name


def expected_default(parameter: inspect.Parameter) -> str | None:
    """How a table shows this default, where that is unambiguous."""
    default = parameter.default
    if default is inspect.Parameter.empty:
        return "required"
    if isinstance(default, bool):
        return f"`{default}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    if default is None:
        return None  # "none", "none (now)", "`None`"… all fine
    if default == timedelta(days=1):
        return "1 day"
    if isinstance(default, tuple):
        return f"`{default!r}`".replace("'", '"')
    return None


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda cls: cls.__name__)
def test_docs_table_lists_every_parameter_with_templating_and_default(cls):
    rows = rows_by_name(table((ROOT / "docs" / "operators.md").read_text(), f"## {cls.__name__}\n"))
    params = parameters(cls)
    assert set(rows) == set(params), "docs/operators.md and the signature differ"
    for name, parameter in params.items():
        row = rows[name]
        assert row["templated"].startswith("yes") == (name in cls.template_fields), name
        default = expected_default(parameter)
        if name == "deferrable":
            assert "default_deferrable" in row["default"]
        elif default is not None:
            assert row["default"].startswith(default), f"{name}: {row['default']!r} is not {default!r}"
        else:
            assert row["default"].lower().startswith(("none", "`none`")), name
        assert row.get("type"), f"{name} has no type"


def test_every_operator_sensor_and_trigger_the_provider_lists_is_documented():
    from airflow_provider_fuse.get_provider_info import get_provider_info

    text = (ROOT / "docs" / "operators.md").read_text()
    info = get_provider_info()
    for kind in ("operators", "sensors"):
        for entry in info[kind]:
            for module_name in entry["python-modules"]:
                module = __import__(module_name, fromlist=["__all__"])
                for name in module.__all__:
                    if name.startswith("Fuse"):
                        assert f"## {name}\n" in text, f"{name} has no section in docs/operators.md"
