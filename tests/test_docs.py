"""The docs stay in step with the code, with the repository, and with themselves.

Adding a parameter without documenting it fails here, and so does a table in docs/operators.md that
says a field is templated when it is not (or the other way round), or gives another default. So does
a link to a file or heading that is not in the repository (a path outside it included), a path in
backticks that names no file of it, a table or a line written twice in two pages (each topic has one
page; the others link to it), and a DAG of the README or the getting-started page that does not
load.
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

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


# --- The Markdown of the repository: links, paths, written once ----------------------------------

#: Set by `make test-wheel`, which copies only tests/, example_dags/, docs/ and README.md.
INSTALLED = os.environ.get("FUSE_TEST_INSTALLED_WHEEL") == "1"
SOURCE_TREE_ONLY = pytest.mark.skipif(
    INSTALLED, reason="links reach files `make test-wheel` does not copy; `make test` checks them"
)
NOT_OURS = {"node_modules", "dist", "build", "__pycache__"}
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
REPO_PATH = re.compile(r"^(?:[\w.-]+/)*[\w.-]+\.(?:md|py)$")
GITHUB_LINE = re.compile(r"^L\d+(?:-L\d+)?$")


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repository: no virtualenv, build output or hidden folder."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(".") and name not in NOT_OURS and not name.endswith(".egg-info")
        ]
        found.extend(Path(folder, name) for name in files if name.endswith(".md"))
    return sorted(found)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every line outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def fenced_blocks(text: str, language: str) -> list[str]:
    """The contents of the fenced code blocks marked ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation out, spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, line in prose_lines(path.read_text()):
        found.update(HTML_ANCHOR.findall(line))
        if heading := HEADING.match(line):
            base = slug(heading.group(2))
            count = counts.get(base, 0)
            counts[base] = count + 1
            found.add(f"{base}-{count}" if count else base)
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """``(line number, target)`` of every link and image in ``path``, outside code."""
    found = []
    for number, line in prose_lines(path.read_text()):
        line = CODE_SPAN.sub(lambda match: " " * len(match.group(0)), line)
        found.extend((number, target) for target in INLINE_LINK.findall(line))
        if definition := REFERENCE_DEFINITION.match(line):
            found.append((number, definition.group(1)))
    return found


def broken_link(source: Path, target: str, root: Path = ROOT) -> str | None:
    """Why ``target``, linked from ``source``, leads nowhere inside ``root``; ``None`` when it is fine."""
    if SCHEME.match(target):
        return None  # a web address: not the repository's to check
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part)
    if path_part.startswith("/"):
        return "an absolute path: link inside the repository with a relative one"
    resolved = (source.parent / path_part).resolve() if path_part else source.resolve()
    if not resolved.is_relative_to(root.resolve()):
        return "outside the repository: readers of the repository do not have it"
    if not resolved.exists():
        return "no such file in the repository"
    if not anchor:
        return None
    if resolved.suffix == ".md":
        return None if anchor in anchors(resolved) else f"{resolved.name} has no heading #{anchor}"
    if resolved.is_file() and GITHUB_LINE.match(anchor):
        return None
    return f"#{anchor} is not an anchor GitHub makes in {resolved.name}"


def missing_path(source: Path, span: str, root: Path = ROOT) -> bool:
    """Whether a path in backticks names no file inside ``root`` (beside ``source``, at the top, or in
    the package)."""
    candidates = (source.parent / span, root / span, root / "airflow_provider_fuse" / span)
    return not any(
        candidate.resolve().is_relative_to(root.resolve()) and candidate.exists() for candidate in candidates
    )


@SOURCE_TREE_ONLY
def test_every_link_of_every_markdown_file_leads_to_a_file_and_heading_of_the_repository():
    broken = [
        f"{source.relative_to(ROOT)}:{number}: ({target}) {why}"
        for source in markdown_files()
        for number, target in links(source)
        if (why := broken_link(source, target))
    ]
    assert broken == []


@SOURCE_TREE_ONLY
def test_every_file_path_in_backticks_names_a_file_of_the_repository():
    missing = [
        f"{source.relative_to(ROOT)}:{number}: `{span}`"
        for source in markdown_files()
        for number, line in prose_lines(source.read_text())
        for _, span in CODE_SPAN.findall(line)
        if REPO_PATH.match(span) and missing_path(source, span)
    ]
    assert missing == []


def test_the_link_check_finds_a_missing_file_a_missing_heading_and_a_path_outside_the_repository(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "notes.md").write_text("# Notes\n")
    page = root / "docs" / "page.md"
    page.write_text(
        "# A page\n\n## Files between tasks: object storage\n\n```\n## not a heading\n```\n"
        "[ok](#files-between-tasks-object-storage) [ok](page.md#a-page) [ok](https://example.com/x)\n"
        "[no file](other.md) [no heading](#not-a-heading) [outside](../../shared/notes.md)\n"
        "[abs](/etc/hosts)\n"
        "`[not a link](nowhere.md)` and `../shared/notes.md` and `page.md`\n"
    )
    verdicts = {target: broken_link(page, target, root) for _, target in links(page)}
    assert [target for target, why in verdicts.items() if why is None] == [
        "#files-between-tasks-object-storage",
        "page.md#a-page",
        "https://example.com/x",
    ]
    assert "no such file" in verdicts["other.md"]
    assert "no heading #not-a-heading" in verdicts["#not-a-heading"]
    assert "outside the repository" in verdicts["../../shared/notes.md"]
    assert "absolute" in verdicts["/etc/hosts"]
    assert missing_path(page, "../shared/notes.md", root)
    assert not missing_path(page, "page.md", root)


def test_anchors_are_made_as_github_makes_them():
    assert slug("The duplicate guard and `[state_store]`") == "the-duplicate-guard-and-state_store"
    assert slug("Installing: the celery pin or Airflow's constraints") == (
        "installing-the-celery-pin-or-airflows-constraints"
    )
    assert slug("Across tries and clears of the same task instance (Airflow ≥ 3.3)") == (
        "across-tries-and-clears-of-the-same-task-instance-airflow--33"
    )


def written_once_pages() -> list[Path]:
    """The pages that explain the provider (the changelog records history and may repeat them)."""
    return [path for path in markdown_files() if path.name != "CHANGELOG.md"]


def test_no_line_of_prose_stands_in_two_pages():
    """A copied paragraph or table row goes stale in one of its places: each topic has one page."""
    places: dict[str, set[str]] = {}
    for path in written_once_pages():
        for _, line in prose_lines(path.read_text()):
            text = " ".join(line.split())
            if len(text) >= 50 and not re.fullmatch(r"[|:\- ]+", text):
                places.setdefault(text, set()).add(str(path.relative_to(ROOT)))
    twice = {text: sorted(pages) for text, pages in places.items() if len(pages) > 1}
    assert twice == {}


def tables(text: str) -> list[set[str]]:
    """Each table's row keys (its first cells, white space folded, header and rule left out)."""
    found: list[set[str]] = []
    rows: list[str] = []
    for _, line in [*prose_lines(text), (0, "")]:
        if line.lstrip().startswith("|"):
            rows.append(line)
            continue
        if len(rows) > 2:
            found.append({" ".join(row.strip().strip("|").split("|")[0].split()) for row in rows[2:]})
        rows = []
    return found


def test_no_table_stands_in_two_pages():
    """Two tables in two pages sharing three row keys are one table written twice, however reworded."""
    pages = {str(path.relative_to(ROOT)): tables(path.read_text()) for path in written_once_pages()}
    twice = [
        f"{one} and {other}: {sorted(keys & other_keys)}"
        for one, other in itertools.combinations(sorted(pages), 2)
        for keys in pages[one]
        for other_keys in pages[other]
        if len(keys & other_keys) >= 3
    ]
    assert twice == []


def load_dag_file(folder: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.3
        from airflow.models.dagbag import DagBag

    accepts_examples = "include_examples" in inspect.signature(DagBag).parameters
    return DagBag(dag_folder=str(folder), **({"include_examples": False} if accepts_examples else {}))


def the_dag_of(page: Path, folder: Path):
    """The one ``python`` block with a ``@dag`` of ``page``, loaded from ``folder`` in a DagBag."""
    (snippet,) = [block for block in fenced_blocks(page.read_text(), "python") if "@dag" in block]
    (folder / f"{page.stem.replace('-', '_').lower()}_dag.py").write_text(snippet)
    bag = load_dag_file(folder)
    assert bag.import_errors == {}
    (dag,) = bag.dags.values()
    return dag


def test_the_readmes_minimal_dag_loads_and_hands_the_export_to_the_bulk_operator(tmp_path):
    dag = the_dag_of(ROOT / "README.md", tmp_path)
    queue_calls = dag.get_task("queue_calls")
    assert isinstance(queue_calls, FuseBulkQueueOperator)
    assert queue_calls.upstream_task_ids == {"export_contacts"}
    assert queue_calls.downstream_task_ids == {"report"}


# --- Promises of the README and the getting-started page -------------------------------------------

#: What names a file after the logical date: a manual run has none (``ds`` renders ``None``).
_DS_FILE_NAME = re.compile(r"\{\{\s*ds(_nodash)?\s*\}\}|\{ds(_nodash)?\}|\bds(_nodash)?\s*:\s*str")


def _docs_and_examples() -> list[Path]:
    return [*markdown_files(), *(ROOT / "example_dags").glob("*.py")]


def test_no_doc_or_example_names_a_file_after_the_logical_date():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _docs_and_examples()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _DS_FILE_NAME.search(line)
    ]
    assert found == []


def test_the_readmes_export_is_named_after_the_run_and_safe_for_a_file_name(tmp_path):
    dag = the_dag_of(ROOT / "README.md", tmp_path)
    export = dag.get_task("export_contacts").python_callable
    runs = ["manual__2026-12-06T10:00:00.123456+00:00", "manual__2026-12-06T10:05:00+00:00", "scheduled__x"]
    uris = [export(run_id=run_id) for run_id in runs]
    assert len(set(uris)) == len(runs)
    for uri in uris:
        name = uri.rsplit("/", 1)[1]
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.csv", name), name
        assert "None" not in name


def test_the_getting_started_dag_loads_and_closes_the_results_loop_on_a_sandbox_scale(tmp_path):
    from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor

    dag = the_dag_of(ROOT / "docs" / "getting-started.md", tmp_path)
    queue_calls = dag.get_task("queue_calls")
    assert isinstance(queue_calls, FuseBulkQueueOperator)
    assert queue_calls.collect_results is True
    assert queue_calls.upstream_task_ids == {"export_contacts"}
    (wait,) = [task for task in dag.tasks if isinstance(task, FuseCampaignResultsSensor)]
    assert wait.bulk_task_id == "queue_calls"
    assert wait.upstream_task_ids == {"queue_calls"}
    assert wait.downstream_task_ids == {"report"}
    # Sandbox-sized waits: the page says so, and gives the defaults for real campaigns.
    assert wait.dialing_timeout <= timedelta(minutes=15)
    assert wait.grace_period <= timedelta(minutes=5)
    assert wait.poke_interval <= 10
    # The page names the defaults for real campaigns: they are the sensor's.
    defaults = {name: parameter.default for name, parameter in parameters(FuseCampaignResultsSensor).items()}
    said = {"dialing_timeout": "12 hours", "grace_period": "30 minutes", "poke_interval": "60 s"}
    assert defaults["dialing_timeout"] == timedelta(hours=12)
    assert defaults["grace_period"] == timedelta(minutes=30)
    assert defaults["poke_interval"] == 60
    text = (ROOT / "docs" / "getting-started.md").read_text()
    for name, default in said.items():
        assert re.search(rf"`{name}` {default}", text), name


def test_the_getting_started_export_is_a_csv_named_after_the_run(tmp_path, monkeypatch):
    import csv
    import tempfile

    dag = the_dag_of(ROOT / "docs" / "getting-started.md", tmp_path)
    export = dag.get_task("export_contacts").python_callable
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the page's export writes
    runs = ["manual__2026-12-06T10:00:00.123456+00:00", "manual__2026-12-06T10:05:00+00:00", "scheduled__x"]
    paths = [Path(export(run_id=run_id)) for run_id in runs]
    assert len(set(paths)) == len(runs)
    for path in paths:
        assert path.is_relative_to(tmp_path)
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.csv", path.name), path.name
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        assert rows
        assert all(row["destination"] for row in rows)


def test_the_readme_says_how_to_install_until_a_release_is_published():
    from packaging.version import Version

    import airflow_provider_fuse

    readme = (ROOT / "README.md").read_text()
    if Version(airflow_provider_fuse.__version__).is_prerelease:
        assert "make dist" in readme
        assert "pip install dist/" in readme


@pytest.mark.parametrize(
    ("stale", "why"),
    [
        ("Admin → Connections → +", "Airflow 3 calls it Add Connection"),
        ("%2A%2A%2A", "uvicorn 0.55 writes the masked path as ***"),
        ("the other three", "there are three operators and two sensors"),
    ],
)
def test_no_page_says_what_is_no_longer_so(stale, why):
    pages = [path.relative_to(ROOT) for path in markdown_files() if stale in path.read_text()]
    assert pages == [], why


def test_getting_started_is_one_short_page_linked_from_the_readme():
    page = ROOT / "docs" / "getting-started.md"
    text = page.read_text()
    # Short enough to follow without scrolling back: at most 80 lines of prose, short commands, and
    # one DAG to copy whole.
    assert len(prose_lines(text)) <= 80
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    dags = [block for block in blocks if "@dag" in block]
    assert len(dags) == 1
    assert len(dags[0].splitlines()) <= 60
    assert all(len(block.splitlines()) <= 6 for block in blocks if "@dag" not in block)
    assert "docs/getting-started.md" in (ROOT / "README.md").read_text()
    assert "getting-started.md" in (ROOT / "docs" / "README.md").read_text()
    for step in ("Install", "sandbox", "connection", "`[fuse]` options", "results connection"):
        assert re.search(rf"^## \d\. .*{re.escape(step)}", text, flags=re.MULTILINE | re.IGNORECASE), step


def test_sqlite_results_name_the_provider_airflow_does_not_include():
    results = (ROOT / "docs" / "results.md").read_text()
    assert "apache-airflow-providers-sqlite" in results
    # `sqlite://` then the absolute path: three slashes, never four.
    assert "sqlite:///var/" in results


def public_modules() -> list[str]:
    """The modules docs/README.md's *Public API* names, as import paths."""
    section = (ROOT / "docs" / "README.md").read_text().split("## Public API", 1)[1].split("\n## ", 1)[0]
    section = section.split("; also", 1)[0]  # the modules come before the other public things
    names = re.findall(r"`((?:airflow_provider_fuse\.)?[a-z][a-z_]*(?:\.[a-z_]+)*)`", section)
    package = "airflow_provider_fuse."
    return [name if name.startswith(package) else package + name for name in names]


def imports_in(text: str) -> list[tuple[str, str]]:
    """Every ``from airflow_provider_fuse... import name`` in ``text`` (code blocks and ``python -c``)."""
    found = []
    for module, names in re.findall(r"from (airflow_provider_fuse[\w.]*) import (\([^)]*\)|[\w, ]+)", text):
        found += [(module, name.strip()) for name in names.strip("()").split(",") if name.strip()]
    return found


def test_the_public_api_statement_is_true_for_every_import_the_docs_and_examples_make():
    import importlib

    modules = public_modules()
    assert "airflow_provider_fuse.operators.fuse" in modules, modules
    assert len(modules) >= 9, modules
    for module in modules:
        exported = importlib.import_module(module).__all__
        assert all(hasattr(importlib.import_module(module), name) for name in exported), module
    sources = [*markdown_files(), *sorted((ROOT / "example_dags").glob("*.py"))]
    made = [(path.name, module, name) for path in sources for module, name in imports_in(path.read_text())]
    assert len(made) >= 10, made
    for page, module, name in made:
        if page in ("CHANGELOG.md", "CONTRIBUTING.md"):
            continue  # history, and how to develop: not what a user imports
        assert module in modules, f"{page} imports from {module}, not a public module of docs/README.md"
        assert name in importlib.import_module(module).__all__, f"{page}: {name} is not in {module}.__all__"


@pytest.mark.skipif(not __import__("shutil").which("curl"), reason="needs curl")
def test_the_sandbox_pages_curl_example_queues_a_call_and_reads_it_back():
    import subprocess

    from airflow_provider_fuse.sandbox import FuseSandbox

    text = (ROOT / "docs" / "sandbox.md").read_text()
    (snippet,) = [block for block in fenced_blocks(text, "sh") if "curl -u" in block]
    with FuseSandbox(time_scale=1e-6) as sandbox:
        script = snippet.replace("http://127.0.0.1:8123/api", sandbox.url).replace(
            "<the developer key it printed>", sandbox.developer_key
        )
        assert sandbox.email == "sandbox@example.com"
        bounded = 'curl() { command curl --silent --show-error --fail --max-time 10 "$@"; echo; }\n'
        answer = subprocess.run(
            ["bash", "-e", "-c", bounded + script], capture_output=True, text=True, timeout=60, check=True
        ).stdout.splitlines()
        assert len(sandbox.calls()) == 1
    assert answer[0] == '{"call_id":"1"}'
    assert answer[1].startswith('{"call_details":{')
