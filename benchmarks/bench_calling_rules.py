"""Benchmark what calling hours and a suppression list add to FuseBulkQueueOperator's preflight.

One command, from the project root (needs the project installed; nothing leaves the machine):

    python benchmarks/bench_calling_rules.py              # 1M rows, 3 runs per case
    python benchmarks/bench_calling_rules.py --rows 100000 --runs 5

It writes a contact CSV of distinct North American numbers under real area codes (libphonenumber's
own list, as ``phonenumbers`` ships it), a suppression list as long as the contact list of which half
is on it, and a CSV of Russian mobiles (a country of many time zones whose mobiles libphonenumber
does not place). Then, in a fresh interpreter per run, it times what the operator does before its
first request: ``contact_list.preflight``, ``check_duplicates``, reading the suppression list, the
parts writer routing every row (``dialing_plan.Router``), the plan's check, windows and content.
Each case is compared with the same file and no option, measured in the same run.

It prints medians and the issue's targets. See benchmarks/README.md for the columns.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
HOURS = ("08:00", "21:00")

#: name: (contact file, calling hours, suppression list, on_unknown_time_zone, reference case)
CASES: dict[str, tuple[str, bool, bool, str, str]] = {
    "none": ("nanp", False, False, "fail", "none"),
    "calling_hours": ("nanp", True, False, "fail", "none"),
    "suppression_list": ("nanp", False, True, "fail", "none"),
    "both": ("nanp", True, True, "fail", "none"),
    "ru mobiles, none": ("ru", False, False, "country", "ru mobiles, none"),
    "ru mobiles, calling_hours": ("ru", True, False, "country", "ru mobiles, none"),
}


# --- What runs in a fresh interpreter ---------------------------------------------------------------


def child(case: str, workdir: str, out: str, traced: bool) -> None:
    """Run the operator's path before its first request for ``case`` and write what it measured."""
    import logging
    import tracemalloc

    from airflow_provider_fuse.calling_hours import CallingHours
    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.operators import contact_list, dialing_plan
    from airflow_provider_fuse.suppression import read_suppression_list

    contacts, hours_on, suppression_on, on_unknown, _ = CASES[case]
    path = os.path.join(workdir, f"{contacts}.csv")
    log = logging.getLogger("bench")
    log.disabled = True
    base_rss = current_rss()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir) as parts_dir:
        summary = contact_list.preflight(path, log)
        contact_list.check_duplicates(summary, "warn", log)
        if traced:
            preflight_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
        router = None
        if hours_on or suppression_on:
            suppression = (
                read_suppression_list(os.path.join(workdir, "suppression.csv"), log=log)
                if suppression_on
                else None
            )
            hours = CallingHours.parse(HOURS) if hours_on else None
            router = dialing_plan.Router(hours, on_unknown, suppression)
        parts = contact_list.parts(
            path, summary, parts_dir, chunk_size=None, on_duplicate_destinations="warn", route=router
        )
        if router is not None:
            router.check()
            if router.hours is not None:
                dialing_plan.part_windows(parts, router.hours, QueueFields(), time.time())
            dialing_plan.plan_content(summary.sha256, router.suppression, parts)
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "rows": summary.rows,
        "parts": len(parts),
        "sent": sum(part.rows for part in parts),
        "suppressed": router.removals.suppressed if router else 0,
        "base_rss": base_rss,
        "peak_rss": peak_rss(),
    }
    if traced:
        result["traced_peak"] = max(preflight_peak, tracemalloc.get_traced_memory()[1])
        result["traced_after_preflight"] = tracemalloc.get_traced_memory()[1]
    Path(out).write_text(json.dumps(result))


def peak_rss() -> int:
    """This process's peak RSS (``VmHWM``; not ``ru_maxrss``, see bench_upload.py)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- The files --------------------------------------------------------------------------------------


def write_files(rows: int, workdir: Path) -> None:
    """The contact CSVs (as the example DAG writes them: the csv module, CRLF) and the suppression list."""
    from phonenumbers.tzdata import TIMEZONE_DATA

    rng = random.Random(21)
    # Area codes of libphonenumber's time-zone data: the US, Canada and the Caribbean.
    area_codes = sorted(p[1:] for p in TIMEZONE_DATA if len(p) == 4 and p[0] == "1" and p[1] in "23456789")
    contacts: set[int] = set()
    while len(contacts) < rows:
        area = int(rng.choice(area_codes))
        contacts.add(10**10 + area * 10**7 + rng.randrange(2 * 10**6, 10**7))
    ordered = list(contacts)
    rng.shuffle(ordered)
    with open(workdir / "nanp.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("destination", "first_name", "airflow_run_id"))
        writer.writerows((number, f"Contact {i % 9973}", "manual__bench") for i, number in enumerate(ordered))
    # Half the contacts, and as many numbers that are not contacts, in three spellings.
    listed = ordered[: rows // 2]
    others: set[int] = set()
    while len(others) < rows - len(listed):
        number = 10**10 + int(rng.choice(area_codes)) * 10**7 + rng.randrange(2 * 10**6, 10**7)
        if number not in contacts:
            others.add(number)
    suppressed = listed + sorted(others)
    rng.shuffle(suppressed)
    with open(workdir / "suppression.csv", "w", newline="", encoding="utf-8") as file:
        file.write("phone\n")
        for i, number in enumerate(suppressed):
            digits = str(number)[1:]
            spelling = (digits, f"+1{digits}", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")[i % 3]
            file.write(spelling + "\n")
    mobiles: set[int] = set()
    while len(mobiles) < rows:
        mobiles.add(79 * 10**9 + rng.randrange(10**9))
    with open(workdir / "ru.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("destination", "first_name", "airflow_run_id"))
        writer.writerows(
            (f"tel:+{number}", f"Contact {i % 9973}", "manual__bench") for i, number in enumerate(mobiles)
        )


# --- Measuring and reporting ------------------------------------------------------------------------


def run_child(case: str, workdir: Path, traced: bool, timeout: float) -> dict:
    out = workdir / "result.json"
    command = [sys.executable, __file__, "--child", case, str(workdir), str(out)]
    if traced:
        command.append("--traced")
    subprocess.run(command, check=True, timeout=timeout)
    return json.loads(out.read_text())


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {cpus} CPUs {model}, Python {platform.python_version()}"


def table(results: dict[str, list[dict]], traced: dict[str, dict]) -> str:
    median = {case: statistics.median(run["seconds"] for run in runs) for case, runs in results.items()}
    out = [
        "| case | rows | sent | parts | runs | s (median) | added s | ratio | RSS growth MiB "
        "| traced peak MiB | after the preflight MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, runs in results.items():
        reference = CASES[case][4]
        last = runs[-1]
        growth = statistics.median((run["peak_rss"] - run["base_rss"]) / MIB for run in runs)
        peak = traced[case]["traced_peak"] / MIB
        after = traced[case]["traced_after_preflight"] / MIB
        out.append(
            f"| {case} | {last['rows']:,} | {last['sent']:,} | {last['parts']} | {len(runs)} "
            f"| {median[case]:.2f} | {median[case] - median[reference]:+.2f} "
            f"| {median[case] / median[reference]:.2f}× | {growth:.1f} | {peak:.1f} | {after:.1f} |"
        )
    return "\n".join(out)


def verdicts(results: dict[str, list[dict]], traced: dict[str, dict], rows: int) -> list[str]:
    median = {case: statistics.median(run["seconds"] for run in runs) for case, runs in results.items()}
    scale = 1_000_000 / rows
    out = []

    def verdict(name: str, ok: bool, detail: str) -> None:
        out.append(f"{'MET   ' if ok else 'MISSED'} {name}: {detail}")

    added = (median["calling_hours"] - median["none"]) * scale
    verdict("calling hours add <= ~2 s per 1M rows", added <= 2.2, f"{added:.2f} s")
    grown = (traced["calling_hours"]["traced_peak"] - traced["none"]["traced_peak"]) / MIB
    after = traced["calling_hours"]["traced_after_preflight"] / MIB
    verdict(
        "calling hours add a few MiB (traced peak)",
        grown <= 4 and after <= 4,
        f"{grown:+.1f} MiB to the peak; {after:.1f} MiB at most after the preflight",
    )
    peak = traced["suppression_list"]["traced_after_preflight"] / MIB
    verdict("suppression 1M vs 1M within 64 MiB (traced, after the preflight)", peak <= 64, f"{peak:.1f} MiB")
    added = median["suppression_list"] - median["none"]
    verdict("suppression 1M vs 1M in seconds", added < 10, f"{added:.2f} s added")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="contact rows (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (default 3)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed for one run")
    parser.add_argument("--workdir", type=Path, help="where the CSVs go (default: a temporary directory)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, traced=args.traced)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fuse-bench-rules-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {machine()}", flush=True)
    print(f"Command: python benchmarks/bench_calling_rules.py {' '.join(sys.argv[1:])}".rstrip(), flush=True)
    results: dict[str, list[dict]] = {case: [] for case in CASES}
    traced: dict[str, dict] = {}
    try:
        if not (workdir / "ru.csv").exists():
            print(f"writing {args.rows:,}-row CSVs ...", file=sys.stderr, flush=True)
            write_files(args.rows, workdir)
        # The cases take turns, so a busy moment of the machine falls on all of them alike.
        for run in range(args.runs):
            for case in CASES:
                print(f"run {run + 1}/{args.runs}: {case} ...", file=sys.stderr, flush=True)
                results[case].append(run_child(case, workdir, False, args.timeout))
        for case in CASES:
            print(f"tracemalloc: {case} ...", file=sys.stderr, flush=True)
            traced[case] = run_child(case, workdir, True, args.timeout)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results, traced))
    print()
    if args.rows < 1_000_000:
        # Scaled up, the fixed costs (the time-zone index, phonenumbers' import) would count a million times.
        print("The targets are for 1M rows: run with --rows 1000000 (the default) to check them.")
        return
    print("Targets (medians; per 1M rows):")
    for line in verdicts(results, traced, args.rows):
        print("  " + line)


if __name__ == "__main__":
    main()
