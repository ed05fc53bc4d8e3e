#!/usr/bin/env python3
"""leakscope's benchmark suite (issues 3, 14): leakscope against the native run and other tools.

    python3 bench/run.py [--reps N] [--quick] [--tools a,b] [--workloads x,y] ...
    cargo xtask bench [the same options]

Builds leakscope (release), the workloads of bench/workloads/ and the frame-pointer-walk shim
bench/fpwalk.c, then for each workload runs, in every repetition, each tool once in a fixed
order (native, fp-walk, leakscope full, leakscope sampling, heaptrack, native on memcheck's
input, memcheck, LSan preloaded, and on the Python workloads only memray, memray
--trace-python-allocators, tracemalloc=1, tracemalloc=25) so that the tools alternate and
drift in the machine's speed hits them alike. The redis workload runs redis-server under each
tool and redis-benchmark against it (its number is the throughput ratio). Slowdowns, added
costs and RSS ratios are computed per repetition against that repetition's native run, then
summarised (median, min-max). Prints a Markdown report and writes it, with the raw numbers as
JSON, under $CARGO_TARGET_DIR/bench/ (default target/bench/). docs/benchmarks.md explains it
all; its "Python" section the Python tools (memray comes from the venv bench/setup.sh makes).

Standard library only: it runs with the machine's python3 on a fresh machine.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKLOADS_SRC = BENCH / "workloads"
DOC = ROOT / "docs" / "benchmarks.md"
DOC_BEGIN = "<!-- bench-results:begin -->"
DOC_END = "<!-- bench-results:end -->"
# the Python tools' report (memray, tracemalloc): its own section, so that a run of the Python
# workloads alone leaves the whole suite's results above alone
DOC_PY_BEGIN = "<!-- bench-python-results:begin -->"
DOC_PY_END = "<!-- bench-python-results:end -->"

LIBLSAN = "/usr/lib/x86_64-linux-gnu/liblsan.so.0"
PYTHON = "/usr/bin/python3"  # Debian's, dynamically linked; a pyenv shim would be a bash script
# The Python workloads run, under every tool, the python of bench/setup.sh's venv (memray is
# installed there) when it is a venv of PYTHON, and PYTHON itself otherwise (then no memray).
SAMPLE_RATE = 524288

# --------------------------------------------------------------------------------------------
# Workloads


@dataclass
class Workload:
    name: str
    description: str
    # argv for a given input scale (1.0 = the full input, about 0.5-1 s natively)
    argv: object
    env: dict = field(default_factory=dict)
    # a regular expression the program's standard output must match (it did its work)
    expect_stdout: str = ""
    # LSan/memcheck must report a leak here (proves the tool really checked)
    leaks: bool = False
    # the group of thread-count variants, for the multi-thread factor
    threads: int = 0
    # a Python script, argv[0] the interpreter (ctx.python): the Python tools run it too
    python: bool = False
    # built by build_workloads with frame pointers: fp-walk runs it, and it has a row in the
    # "Cost per frame" table
    fp: bool = False
    # a server (argv has a "{port}" to fill in): run_one starts it under the tool and runs
    # drive(ctx, scale, port, stem, exited) against it meanwhile (see redis_drive)
    drive: object = None
    # tools that do not run on it, with the reason (their cells are n/a)
    not_for: dict = field(default_factory=dict)
    # the issue whose suite it was added for (issue 3's targets are on its workloads only)
    issue: int = 3


def churn(threads: int) -> Workload:
    return Workload(
        name=f"churn-{threads}t",
        description=(
            f"malloc/free churn, 16-512 bytes, 15-frame chain, {threads} thread(s) "
            "x 10M iterations each"
        ),
        argv=lambda ctx, s, t=threads: [
            str(ctx.bin / "churn"),
            str(t),
            str(max(1000, int(10_000_000 * s))),
        ],
        expect_stdout=r"^churn: \d+ thread",
        threads=threads,
        fp=True,
    )


NO_FP = "its code has no frame pointers (Debian's build)"

REDIS_TESTS = ("SET", "GET", "LPUSH", "LPOP", "INCR")


def redis_requests(scale: float) -> int:
    """Requests per redis-benchmark test: 400k at scale 1."""
    return max(10_000, int(400_000 * scale))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_drive(ctx, scale: float, port: int, stem: Path, exited) -> dict:
    """Wait until the server answers, run redis-benchmark, shut the server down.

    Returns {"rps": {test: requests/s}, "problems": [...], "client_cpu": seconds}. The server
    is asked to shut down whatever happened, so that the tool writes its output and exits."""
    result = {"rps": {}, "problems": [], "client_cpu": 0.0}
    cpu0 = children_cpu()
    ping = ["redis-cli", "-p", str(port), "ping"]
    deadline = time.time() + min(120.0, ctx.timeout)
    ready = False
    while time.time() < deadline:
        r = subprocess.run(ping, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.stdout.strip() == "PONG":
            ready = True
            break
        if exited():
            result["problems"].append("the server exited before it answered ping")
            break
        time.sleep(0.05)
    else:
        result["problems"].append("the server did not answer ping within 120 s")
    if ready:
        bench = ["redis-benchmark", "-p", str(port), "-q", "-n", str(redis_requests(scale)),
                 "-c", "50", "-P", "16", "-t", ",".join(t.lower() for t in REDIS_TESTS),
                 "-d", "64", "--csv"]
        try:
            r = subprocess.run(bench, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=ctx.timeout)
            stem.with_suffix(".benchmark").write_text(r.stdout + r.stderr)
            for row in csv.reader(r.stdout.splitlines()):
                if len(row) >= 2 and row[0] in REDIS_TESTS:
                    result["rps"][row[0]] = float(row[1])
            missing = [t for t in REDIS_TESTS if t not in result["rps"]]
            if r.returncode != 0 or missing:
                result["problems"].append(
                    f"redis-benchmark exit {r.returncode}, no result for {', '.join(missing)}")
        except subprocess.TimeoutExpired:
            result["problems"].append("redis-benchmark timed out")
    if not exited():
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    result["client_cpu"] = children_cpu() - cpu0
    return result


def children_cpu() -> float:
    """CPU time of this process's reaped children (the clients of a server workload)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def geomean(xs):
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs and min(xs) > 0 else None


def sqlite_argv(ctx, scale):
    rows = max(1000, int(120_000 * scale))
    sql = ctx.data / f"sqlite-inserts-{rows}.sql"
    if not sql.exists():
        write_sqlite_sql(sql, rows)
    return ["sqlite3", "-batch", ":memory:", f".read {sql}"]


WORKLOADS = [
    churn(1),
    churn(2),
    churn(4),
    Workload(
        name="cpp-containers",
        description="std::map<std::string, Record>, std::vector, std::string, shared_ptr churn",
        argv=lambda ctx, s: [str(ctx.bin / "cpp_containers"), str(max(5, int(600 * s)))],
        expect_stdout=r"^cpp-containers: \d+ rounds",
        fp=True,
    ),
    Workload(
        name="request-loop",
        description="parse/build small strings per request; every 1000th leaks 64 bytes",
        argv=lambda ctx, s: [str(ctx.bin / "request_loop"), str(max(2000, int(400_000 * s)))],
        expect_stdout=r"^request-loop: \d+ requests",
        leaks=True,
        fp=True,
    ),
    # issue 14: stacks that change away from the innermost frames, and a real server
    Workload(
        name="outer-chain",
        description="17-level chain whose outer levels switch between two variants at random: "
                    "64 distinct stacks, 2 mallocs per iteration",
        argv=lambda ctx, s: [str(ctx.bin / "outer_chain"), str(max(10_000, int(7_000_000 * s)))],
        expect_stdout=r"^outer-chain: \d+ iterations, 64 stacks, checksum \d+$",
        fp=True,
        issue=14,
    ),
    Workload(
        name="random-depth",
        description="recursion of random depth 4..48 through 3 mutually recursive functions, "
                    "malloc at the bottom",
        argv=lambda ctx, s: [str(ctx.bin / "random_depth"),
                             str(max(10_000, int(3_400_000 * s)))],
        expect_stdout=r"^random-depth: \d+ iterations, depth 4\.\.48, checksum \d+$",
        fp=True,
        issue=14,
    ),
    Workload(
        name="cpp-templates",
        description="recursive template Level<N>, std::function, make_shared, vector<string>, "
                    "map insertion, std::sort with an allocating comparator",
        argv=lambda ctx, s: [str(ctx.bin / "cpp_templates"), str(max(1000, int(120_000 * s)))],
        expect_stdout=r"^cpp-templates: \d+ iterations, \d+ map entries, checksum \d+$",
        fp=True,
        issue=14,
    ),
    Workload(
        name="interpreter",
        description="bytecode VM: recursive vm_run, strings and lists malloc'd by the same C "
                    "functions at varying depths",
        argv=lambda ctx, s: [str(ctx.bin / "interpreter"), str(max(1000, int(500_000 * s)))],
        expect_stdout=r"^interpreter: \d+ iterations, checksum \d+$",
        fp=True,
        issue=14,
    ),
    Workload(
        name="python-dicts",
        description="Python builds and drops dicts and lists, PYTHONMALLOC=malloc",
        argv=lambda ctx, s: [
            ctx.python,
            str(WORKLOADS_SRC / "python_dicts.py"),
            str(max(10, int(2000 * s))),
        ],
        env={"PYTHONMALLOC": "malloc", "PYTHONDONTWRITEBYTECODE": "1"},
        expect_stdout=r"^python-dicts: \d+ rounds",
        python=True,
        not_for={"fp-walk": NO_FP},
    ),
    Workload(
        name="python-objects",
        description="Python builds and drops small tuples, dicts, lists and strings (pymalloc); "
                    "a bounded working set and some growth",
        argv=lambda ctx, s: [
            ctx.python,
            str(WORKLOADS_SRC / "python_objects.py"),
            str(max(10, int(3000 * s))),
        ],
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        expect_stdout=r"^python-objects: \d+ rounds, \d+ items, \d+ live, \d+ kept, checksum \d+",
        python=True,
        not_for={"fp-walk": NO_FP},
    ),
    Workload(
        name="sqlite3-inserts",
        description="Debian's sqlite3 CLI: 120k INSERTs in one transaction, then selects",
        argv=sqlite_argv,
        expect_stdout=r"^\d+\|\d+$",
        not_for={"fp-walk": NO_FP},
    ),
    Workload(
        name="redis",
        description="Debian's redis-server under the tool, redis-benchmark (SET, GET, LPUSH, "
                    "LPOP, INCR; 50 clients, pipeline 16, 64-byte values) against it",
        argv=lambda ctx, s: ["redis-server", "--port", "{port}", "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--daemonize", "no",
                             "--dir", str(ctx.data)],
        expect_stdout=r"Ready to accept connections",
        drive=redis_drive,
        not_for={"fp-walk": NO_FP,
                 "memcheck": "too slow for a server benchmark",
                 "native-small": "memcheck does not run on it"},
        issue=14,
    ),
]


def write_sqlite_sql(path: Path, rows: int) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(
            "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, category TEXT,"
            " price REAL, note TEXT);\n"
            "CREATE INDEX items_category ON items(category);\n"
            "BEGIN;\n"
        )
        for i in range(rows):
            f.write(
                "INSERT INTO items(name, category, price, note) VALUES"
                f"('item-{i}', 'cat-{i % 50}', {i % 1000}.{i % 100:02d}, 'note {'x' * (i % 40)}');\n"
            )
        f.write(
            "COMMIT;\n"
            "SELECT category, count(*), round(avg(price), 2) FROM items"
            " GROUP BY category ORDER BY category LIMIT 3;\n"
            "SELECT count(*) FROM items WHERE name LIKE 'item-1%';\n"
            "UPDATE items SET price = price * 1.1 WHERE category = 'cat-7';\n"
            "DELETE FROM items WHERE id % 3 = 0;\n"
            "SELECT count(*), sum(length(note)) FROM items;\n"
        )
    tmp.rename(path)


# --------------------------------------------------------------------------------------------
# Tools


@dataclass
class Tool:
    name: str  # id used on the command line and in the JSON
    label: str  # column heading
    # the native run it is compared with: "native", or "native-small" (memcheck's input)
    baseline: str = "native"
    internal: bool = False  # not selectable: run when the tool that needs it is
    python_only: bool = False  # run on the Python workloads only (and reported apart)


TOOLS = [
    Tool("native", "native"),
    Tool("fp-walk", "fp-walk"),
    Tool("leakscope", "leakscope full"),
    Tool("leakscope-sampling", "leakscope sampling"),
    Tool("heaptrack", "heaptrack"),
    Tool("native-small", "native (memcheck's input)", internal=True),
    Tool("memcheck", "memcheck", baseline="native-small"),
    Tool("lsan", "LSan preloaded"),
    Tool("memray", "memray", python_only=True),
    Tool("memray-pyalloc", "memray --trace-python-allocators", python_only=True),
    Tool("tracemalloc", "tracemalloc=1", python_only=True),
    Tool("tracemalloc-25", "tracemalloc=25", python_only=True),
]
TOOL = {t.name: t for t in TOOLS}
SELECTABLE = [t.name for t in TOOLS if not t.internal]
MEMRAY_TOOLS = ("memray", "memray-pyalloc")
TRACEMALLOC_DEPTH = {"tracemalloc": 1, "tracemalloc-25": 25}


@dataclass
class Context:
    out: Path
    bin: Path
    data: Path
    runs: Path
    leakscope: Path
    measure: Path
    sampling_supported: bool
    scale: float
    memcheck_scale: float
    timeout: float
    keep_outputs: bool
    # the interpreter of the Python workloads, for every tool (see python_setup)
    python: str = PYTHON
    memray_version: str | None = None
    no_memray: str = ""  # why memray cannot run, when it cannot


def tool_command(ctx: Context, tool: str, argv: list, stem: Path) -> tuple[list, dict, Path | None]:
    """The command line, extra environment and profile path of one run."""
    if tool in ("native", "native-small"):
        return argv, {}, None
    if tool == "fp-walk":
        # set by env(1) right before the program, so that the measure helper (which would
        # write the stats file again when it exits) is not preloaded itself
        return (["env", f"LD_PRELOAD={ctx.bin / 'libfpwalk.so'}",
                 f"FPWALK_STATS={stem.with_suffix('.fpwalk')}"] + argv, {}, None)
    if tool in ("leakscope", "leakscope-sampling"):
        profile = stem.with_suffix(".profile")
        cmd = [str(ctx.leakscope), "run", "--keep", str(profile), "--format", "json",
               "--output", "/dev/null"]
        if tool == "leakscope-sampling":
            cmd += ["--sample-rate", str(SAMPLE_RATE)]
        return cmd + ["--"] + argv, {}, profile
    if tool == "heaptrack":
        # heaptrack appends .zst (or .gz when zstd is missing) to the name it is given
        return ["heaptrack", "-o", str(stem) + ".heaptrack"] + argv, {}, None
    if tool == "memcheck":
        log = stem.with_suffix(".valgrind.log")
        return (["valgrind", "--leak-check=full", "--show-leak-kinds=all",
                 f"--log-file={log}"] + argv, {}, None)
    if tool == "lsan":
        # verbosity=1 makes liblsan print a few lines at start-up: the proof that it loaded
        return argv, {"LD_PRELOAD": LIBLSAN,
                      "LSAN_OPTIONS": "detect_leaks=1:exitcode=0:verbosity=1"}, None
    # The Python tools: argv is [python, script, args...], and the same python runs them
    if tool in MEMRAY_TOOLS:
        # memray's defaults (Python stacks only, no --native; pymalloc's allocations are not
        # traced one by one unless --trace-python-allocators; the capture lz4-compressed at
        # exit); --output/--force only name the capture file
        capture = stem.with_suffix(".memray.bin")
        cmd = [argv[0], "-m", "memray", "run", "--output", str(capture), "--force"]
        if tool == "memray-pyalloc":
            cmd.append("--trace-python-allocators")
        return cmd + argv[1:], {}, capture
    if tool in TRACEMALLOC_DEPTH:
        return [argv[0], "-X", f"tracemalloc={TRACEMALLOC_DEPTH[tool]}"] + argv[1:], {}, None
    raise ValueError(tool)


# --------------------------------------------------------------------------------------------
# Running one measurement


@dataclass
class Run:
    workload: str
    tool: str
    rep: int
    argv: list
    status: str = "ok"  # ok | failed | crashed | timeout | n/a
    detail: str = ""
    seconds: float | None = None
    cpu_seconds: float | None = None
    maxrss_kib: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    profile_bytes: int | None = None
    # CPUs that other processes of the machine kept busy during the run (noise indicator)
    other_cpus: float | None = None
    # fp-walk: allocations walked and frames seen (bench/fpwalk.c's stats file)
    allocations: int | None = None
    frames: int | None = None
    # a server workload: requests/s per redis-benchmark test
    rps: dict | None = None
    stdout: str = ""
    stderr: str = ""


def address_space_cap() -> int:
    """heaptrack's cap on address space: 4 GiB, or half the machine's memory if less.

    heaptrack_interpret 1.4.0 grows without bound on random-depth (19 GiB and std::bad_alloc
    after a minute, on 24 GiB): capped, it fails after a few seconds instead of pushing the
    machine (and whatever else runs on it) into swap or the OOM killer."""
    cap = 4 << 30
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                cap = min(cap, int(line.split()[1]) * 1024 // 2)
    except (OSError, ValueError, IndexError):
        pass
    return cap


def measure(ctx: Context, argv: list, env: dict, stdout: Path, stderr: Path, during=None,
            as_cap: int | None = None):
    """Run argv through bench/measure.c; return (seconds, wait status, rusage, timed_out,
    what `during` returned).

    Wall time from just before the fork to the reaping; ru_maxrss from wait4 is the peak
    RSS of the largest process of the tree (the child, or any descendant it waited for).
    during(exited), when given, runs while the program does (a server's clients; exited()
    says whether the program has ended); the CPU time it reports as "client_cpu" is not
    counted as other processes' work. as_cap, when given, is an RLIMIT_AS (bytes) for the
    helper and so for every process of the run."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (as_cap, as_cap))

    result = stdout.with_suffix(".measure")
    busy_before = busy_cpu_seconds()
    driven = None
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        helper = subprocess.Popen(
            [str(ctx.measure), str(result), str(int(ctx.timeout))] + argv,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
            preexec_fn=limit if as_cap else None)
        try:
            if during is not None:
                try:
                    driven = during(lambda: helper.poll() is not None)
                except Exception as e:  # the clients failed: stop the server all the same
                    driven = {"problems": [f"the clients failed: {e}"], "client_cpu": 0.0}
                if driven.get("problems") and helper.poll() is None:
                    # it may not have started: SIGTERM makes measure kill its process group
                    try:
                        helper.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        helper.terminate()
            helper.wait(timeout=ctx.timeout + 60)
        except BaseException:
            # ^C or the helper hung: SIGTERM makes it kill the run's process group
            helper.terminate()
            try:
                helper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                helper.kill()
            raise
    if helper.returncode != 0 or not result.exists():
        raise RuntimeError(f"measure failed on {argv}: see {stderr}")
    busy = busy_cpu_seconds() - busy_before
    fields = result.read_text().split()
    result.unlink()
    seconds, status, maxrss = float(fields[0]), int(fields[1]), int(fields[2])
    cpu = float(fields[3]) + float(fields[4])
    client = driven.get("client_cpu", 0.0) if driven else 0.0
    # CPUs kept busy by other processes of the machine meanwhile: the noise indicator
    others = max(0.0, (busy - cpu - client) / seconds) if seconds > 0 else 0.0
    return seconds, status, Usage(maxrss, cpu, others), fields[5] == "1", driven


@dataclass
class Usage:
    maxrss_kib: int
    cpu_seconds: float
    other_cpus: float


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (/proc/stat, all CPUs)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...
    busy = sum(int(x) for x in fields[1:4]) + sum(int(x) for x in fields[6:9])
    return busy / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def run_one(ctx: Context, workload: Workload, tool: str, rep: int) -> Run:
    scale = ctx.scale * (ctx.memcheck_scale if tool in ("memcheck", "native-small") else 1.0)
    argv = workload.argv(ctx, scale)
    port = None
    if workload.drive is not None:
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in argv]
    wdir = ctx.runs / workload.name
    wdir.mkdir(parents=True, exist_ok=True)
    stem = wdir / f"r{rep}-{tool}"
    cmd, extra_env, profile = tool_command(ctx, tool, argv, stem)
    run = Run(workload.name, tool, rep, cmd,
              stdout=str(stem.with_suffix(".stdout")), stderr=str(stem.with_suffix(".stderr")))
    if tool in workload.not_for:
        run.status, run.detail = "n/a", workload.not_for[tool]
        return run
    if tool == "fp-walk" and not workload.fp:
        run.status, run.detail = "n/a", "not built with frame pointers"
        return run
    if tool == "leakscope-sampling" and not ctx.sampling_supported:
        run.status, run.detail = "n/a", "this leakscope has no --sample-rate"
        return run
    if tool in MEMRAY_TOOLS and not ctx.memray_version:
        run.status, run.detail = "n/a", ctx.no_memray
        return run
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(workload.env)
    env.update(extra_env)
    for leftover in wdir.glob(stem.name + ".*"):
        leftover.unlink()
    during = None
    if workload.drive is not None:
        during = lambda exited: workload.drive(ctx, scale, port, stem, exited)  # noqa: E731
    try:
        seconds, status, usage, timed_out, driven = measure(
            ctx, cmd, env, Path(run.stdout), Path(run.stderr), during,
            as_cap=address_space_cap() if tool == "heaptrack" else None)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        run.status, run.detail = "failed", f"could not measure: {e}"
        return run
    run.seconds = seconds
    run.cpu_seconds = usage.cpu_seconds
    run.maxrss_kib = usage.maxrss_kib
    run.other_cpus = round(usage.other_cpus, 3)
    err_text = Path(run.stderr).read_text(errors="replace")
    out_text = Path(run.stdout).read_text(errors="replace")

    if os.WIFSIGNALED(status):
        run.signal = signal.Signals(os.WTERMSIG(status)).name
    else:
        run.exit_code = os.WEXITSTATUS(status)

    problems = []
    if driven is not None:
        run.rps = driven.get("rps") or None
        problems.extend(driven.get("problems", []))
    if timed_out:
        run.status, run.detail = "timeout", f"killed after {ctx.timeout:.0f} s"
    elif run.signal:
        run.status, run.detail = "crashed", run.signal
    elif run.exit_code == 128 + signal.SIGSEGV or "DEADLYSIGNAL" in err_text \
            or re.search(r"ERROR: LeakSanitizer: (SEGV|BUS|stack-overflow)", err_text):
        run.status, run.detail = "crashed", tail(Path(run.stderr))
    elif run.exit_code != 0:
        run.status, run.detail = "failed", f"exit {run.exit_code}: {tail(Path(run.stderr))}"
        if tool == "heaptrack" and "bad_alloc" in err_text:
            run.detail += (f" (heaptrack_interpret, at the runner's cap of "
                           f"{address_space_cap() / 2**30:.0f} GiB of address space)")
    else:
        if workload.expect_stdout and not re.search(workload.expect_stdout, out_text, re.M):
            problems.append("the program's output lacks its closing line")
        if tool == "fp-walk":
            stats = stem.with_suffix(".fpwalk")
            m = re.search(r"allocations=(\d+) frames=(\d+)",
                          stats.read_text() if stats.exists() else "")
            if not m or int(m.group(1)) == 0:
                problems.append(f"no fp-walk stats in {stats}")
            else:
                run.allocations, run.frames = int(m.group(1)), int(m.group(2))
        elif tool in ("leakscope", "leakscope-sampling"):
            if not profile.exists() or profile.stat().st_size == 0:
                problems.append(f"no profile at {profile}")
        elif tool in MEMRAY_TOOLS:
            if not profile.exists() or profile.stat().st_size == 0:
                problems.append(f"memray wrote no capture file at {profile}")
        elif tool == "heaptrack":
            outputs = sorted(wdir.glob(stem.name + ".heaptrack.*"))
            if not outputs or outputs[0].stat().st_size == 0:
                problems.append("heaptrack wrote no output file")
            else:
                profile = outputs[0]
        elif tool == "memcheck":
            log = stem.with_suffix(".valgrind.log")
            text = log.read_text(errors="replace") if log.exists() else ""
            if "ERROR SUMMARY" not in text:
                problems.append("valgrind's log has no ERROR SUMMARY")
            elif workload.leaks and "definitely lost" not in text:
                problems.append("memcheck reported no definite leak")
        elif tool == "lsan":
            if "Installed the sigaction" not in err_text:
                problems.append("liblsan did not start (no verbosity=1 lines)")
            elif workload.leaks and "LeakSanitizer: detected memory leaks" not in err_text:
                problems.append("LSan reported no leak")
        if problems:
            run.status, run.detail = "failed", "; ".join(problems)
    if problems and run.status in ("crashed", "failed", "timeout") \
            and not run.detail.startswith(problems[0]):
        # a server that the clients could not use, stopped by the runner
        run.detail = "; ".join(problems) + (f" ({run.detail})" if run.detail else "")
    if profile is not None and profile.exists():
        run.profile_bytes = profile.stat().st_size
        if not ctx.keep_outputs:
            profile.unlink()
    return run


# --------------------------------------------------------------------------------------------
# Summaries


def median(xs):
    return statistics.median(xs) if xs else None


@dataclass
class Cell:
    status: str  # ok, or the failure status shared by all its runs
    slowdowns: list
    rss_ratios: list
    rss_mib: list
    seconds: list
    profile_bytes: list
    failures: list  # Run objects that failed
    # per repetition: tool time - native time (s), tool peak RSS - native peak RSS (MiB)
    added_s: list = field(default_factory=list)
    added_rss_mib: list = field(default_factory=list)
    # fp-walk: allocations and mean frames per allocation, per repetition
    allocations: list = field(default_factory=list)
    frames_per_alloc: list = field(default_factory=list)
    # a server workload: requests/s per test (one dict per repetition), and per repetition
    # the throughput ratio against the native run (geometric mean over the tests)
    rps: list = field(default_factory=list)
    throughput_ratios: list = field(default_factory=list)

    @property
    def slowdown(self):
        return median(self.slowdowns)


def summarise(runs: list, workloads: list, tools: list) -> dict:
    by = {}
    for r in runs:
        by.setdefault((r.workload, r.tool), {})[r.rep] = r
    cells = {}
    for w in workloads:
        for t in tools:
            reps = by.get((w, t), {})
            if not reps:
                continue
            base = by.get((w, TOOL[t].baseline), {})
            cell = Cell("ok", [], [], [], [], [], [])
            for rep, r in sorted(reps.items()):
                b = base.get(rep)
                if r.status != "ok":
                    cell.failures.append(r)
                    continue
                cell.seconds.append(r.seconds)
                cell.rss_mib.append(r.maxrss_kib / 1024)
                if r.profile_bytes is not None:
                    cell.profile_bytes.append(r.profile_bytes)
                if r.allocations:
                    cell.allocations.append(r.allocations)
                    cell.frames_per_alloc.append(r.frames / r.allocations)
                if r.rps:
                    cell.rps.append(r.rps)
                if b is not None and b.status == "ok":
                    cell.slowdowns.append(r.seconds / b.seconds)
                    cell.rss_ratios.append(r.maxrss_kib / b.maxrss_kib)
                    cell.added_s.append(r.seconds - b.seconds)
                    cell.added_rss_mib.append((r.maxrss_kib - b.maxrss_kib) / 1024)
                    if r.rps and b.rps:
                        mine, base_rps = geomean(r.rps.values()), geomean(b.rps.values())
                        if mine and base_rps:
                            cell.throughput_ratios.append(base_rps / mine)
            if not cell.seconds:
                cell.status = cell.failures[0].status if cell.failures else "failed"
            cells[(w, t)] = cell
    return cells


def fmt_x(x):
    if x is None:
        return "-"
    return f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def fmt_size(n):
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def failure_text(cell: Cell) -> str:
    n = len(cell.failures)
    total = n + len(cell.seconds)
    status = cell.failures[0].status
    return status if n == total else f"{status} {n}/{total}"


def slowdown_text(cell: Cell | None, spread=True) -> str:
    if cell is None:
        return "-"
    if cell.status != "ok":
        return failure_text(cell)
    if not cell.slowdowns:
        return "-"
    text = fmt_x(cell.slowdown)
    if spread and len(cell.slowdowns) > 1:
        text += f" ({min(cell.slowdowns):.1f}-{max(cell.slowdowns):.1f})"
    if cell.failures:
        text += f" [{failure_text(cell)}]"
    return text


def fmt_ns(x):
    if x is None:
        return "-"
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def fmt_rps(x):
    if x is None:
        return "-"
    return f"{x / 1000:.0f}k" if x >= 10_000 else f"{x:.0f}"


def report(meta: dict, runs: list, workloads: list, tools: list) -> str:
    # the Python tools have their own report (python_report)
    tools = [t for t in tools if not TOOL[t].python_only]
    cells = summarise(runs, workloads, tools)
    shown = [t for t in tools if t != "native-small"]
    # a server's numbers are in its own table (throughput), not in the programs' tables
    table_ws = [w for w in workloads if WL[w].drive is None]
    server_ws = [w for w in workloads if WL[w].drive is not None]
    out = []
    out.append(f"Run of {meta['date']} on {meta['machine']}; leakscope {meta['leakscope_commit']}; "
               f"median of {meta['reps']} repetition(s), input scale {meta['scale']:g} "
               f"(memcheck: {meta['scale'] * meta['memcheck_scale']:g}); "
               f"the whole run took {meta['duration_s'] / 60:.1f} min.")
    out.extend(noise_lines([r for r in runs if r.tool in tools]))
    if meta.get("interrupted"):
        out.append("")
        out.append("**This run was interrupted**: the tables hold only the repetitions made.")
    out.append("")
    out.append(f"Command: `{meta.get('command', 'bench/run.py')}`. "
               f"Tools: {meta['tool_versions']}.")
    out.append("")

    if table_ws:
        out.append("**Slowdown against the native run** (median, min-max over the repetitions; "
                   "memcheck against the native run of its smaller input)")
        out.append("")
        out.append("| workload | native | "
                   + " | ".join(TOOL[t].label for t in shown if t != "native") + " |")
        out.append("|---|---:|" + "---:|" * (len(shown) - 1))
        for w in table_ws:
            native = cells.get((w, "native"))
            ncol = (f"{median(native.seconds):.2f} s" if native and native.seconds
                    else slowdown_text(native))
            row = [w, ncol] + [slowdown_text(cells.get((w, t))) for t in shown if t != "native"]
            out.append("| " + " | ".join(row) + " |")
        out.append("")

        out.append("**Peak RSS** (median MiB of the largest process of the tree, and its ratio "
                   "to the native run's)")
        out.append("")
        out.append("| workload | " + " | ".join(TOOL[t].label for t in shown) + " |")
        out.append("|---|" + "---:|" * len(shown))
        for w in table_ws:
            row = [w]
            for t in shown:
                row.append(rss_text(cells.get((w, t)), t == "native"))
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    profiled = [t for t in shown if t in ("leakscope", "leakscope-sampling", "heaptrack")]
    if profiled and table_ws:
        out.append("**Profile written** (median size; the other tools write none)")
        out.append("")
        out.append("| workload | " + " | ".join(TOOL[t].label for t in profiled) + " |")
        out.append("|---|" + "---:|" * len(profiled))
        for w in table_ws:
            row = [w]
            for t in profiled:
                c = cells.get((w, t))
                if c is None:
                    row.append("-")
                elif c.status != "ok":
                    row.append(failure_text(c))
                else:
                    row.append(fmt_size(median(c.profile_bytes)))
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    # Cost per frame (issue 14): the tools' added time per allocation and per frame, with
    # the allocations and the frames per allocation that the frame-pointer walk counted
    fp_ws = [w for w in table_ws if WL[w].fp and cells.get((w, "fp-walk")) is not None]
    per_frame_tools = [t for t in ("fp-walk", "leakscope", "heaptrack") if t in shown]
    if fp_ws:
        out.append("**Cost per frame** (allocations per run and mean frames per allocation as "
                   "fp-walk counted them; added ns per allocation = (tool's wall time - native "
                   "wall time) / allocations, per frame = that / the mean frames; medians over "
                   "the repetitions)")
        out.append("")
        head = ["workload", "allocations", "frames / allocation"]
        for t in per_frame_tools:
            head += [f"{TOOL[t].label} ns / alloc", f"{TOOL[t].label} ns / frame"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|" + "---:|" * (len(head) - 1))
        for w in fp_ws:
            fp = cells[(w, "fp-walk")]
            if fp.status != "ok" or not fp.allocations:
                out.append(f"| {w} | {failure_text(fp) if fp.status != 'ok' else '-'} | - |"
                           + " - | - |" * len(per_frame_tools))
                continue
            allocs = median(fp.allocations)
            frames = median(fp.frames_per_alloc)
            row = [w, f"{allocs / 1e6:.1f}M" if allocs >= 1e5 else f"{allocs:.0f}",
                   f"{frames:.1f}"]
            for t in per_frame_tools:
                c = cells.get((w, t))
                if c is None or c.status != "ok" or not c.added_s:
                    text = "-" if c is None or c.status == "ok" else failure_text(c)
                    row += [text, "-"]
                    continue
                ns = median([a / allocs * 1e9 for a in c.added_s])
                row += [fmt_ns(ns), fmt_ns(ns / frames) if frames else "-"]
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    thread_ws = {WL[w].threads: w for w in workloads if WL[w].threads}
    if 1 in thread_ws and len(thread_ws) > 1:
        out.append("**Multi-thread factor**: slowdown(N threads) / slowdown(1 thread), medians "
                   "(target for leakscope: at most 1.3)")
        out.append("")
        ns = sorted(n for n in thread_ws if n != 1)
        out.append("| tool | " + " | ".join(f"{n}t / 1t" for n in ns) + " |")
        out.append("|---|" + "---:|" * len(ns))
        for t in shown:
            if t == "native":
                continue
            one = cells.get((thread_ws[1], t))
            row = [TOOL[t].label]
            for n in ns:
                c = cells.get((thread_ws[n], t))
                if one is None or c is None or one.status != "ok" or c.status != "ok" \
                        or not one.slowdowns or not c.slowdowns:
                    row.append("-")
                else:
                    row.append(f"{c.slowdown / one.slowdown:.2f}")
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    for w in server_ws:
        out.extend(server_table(cells, w, shown))

    # Targets
    def sd(w, t):
        c = cells.get((w, t))
        if c is None or c.status != "ok":
            return None
        if WL[w].drive is not None:
            return median(c.throughput_ratios)
        return c.slowdown if c.slowdowns else None

    def rss(w, t):
        c = cells.get((w, t))
        return median(c.rss_mib) if c is not None and c.status == "ok" else None

    def target_lines(w, checks):
        lines = []
        for label, value, limit in checks:
            if value is None or limit is None:
                verdict = "no reference" if value is not None else "no measurement"
            else:
                verdict = "met" if value <= limit else "**not met**"
            lines.append(f"| {w} | {label} | {fmt_x(value)} | {fmt_x(limit)} | {verdict} |")
        return lines

    # issue 3: on the workloads of its suite
    lines = []
    for w in [w for w in table_ws if WL[w].issue == 3]:
        ls, ht, mc = sd(w, "leakscope"), sd(w, "heaptrack"), sd(w, "memcheck")
        lss, lsan = sd(w, "leakscope-sampling"), sd(w, "lsan")
        checks = []
        if "leakscope" in tools and "heaptrack" in tools:
            checks.append(("full: added cost <= 1/3 of heaptrack's", ls,
                           None if ht is None else 1 + (ht - 1) / 3))
        if "leakscope" in tools and "memcheck" in tools:
            checks.append(("full: 10x faster than memcheck", ls, None if mc is None else mc / 10))
        if "leakscope" in tools and WL[w].threads > 1 and 1 in thread_ws:
            one = sd(thread_ws[1], "leakscope")
            checks.append((f"full: {WL[w].threads}t factor <= 1.3 x 1t", ls,
                           None if one is None else 1.3 * one))
        if "leakscope-sampling" in tools and "lsan" in tools:
            checks.append(("sampling: added cost <= 1/2 of LSan's", lss,
                           None if lsan is None else 1 + (lsan - 1) / 2))
        lines.extend(target_lines(w, checks))
        if "leakscope" in tools and "heaptrack" in tools:
            a, b = rss(w, "leakscope"), rss(w, "heaptrack")
            if a is None or b is None:
                verdict = "no reference" if a is not None else "no measurement"
                lines.append(f"| {w} | full: peak RSS <= 1/2 of heaptrack's | "
                             f"{'-' if a is None else f'{a:.1f} MiB'} | - | {verdict} |")
            else:
                lines.append(f"| {w} | full: peak RSS <= 1/2 of heaptrack's | {a:.1f} MiB | "
                             f"{b / 2:.1f} MiB | {'met' if a <= b / 2 else '**not met**'} |")
    if lines:
        out.append("**Targets of issue 3** (on its workloads; slowdowns: leakscope's median "
                   "against the limit derived from the other tool's median in this run)")
        out.append("")
        out.append("| workload | target | leakscope | limit | verdict |")
        out.append("|---|---|---:|---:|---|")
        out.extend(lines)
        out.append("")

    # issue 14: on every workload, the server's throughput ratio standing for its slowdown
    lines = []
    for w in workloads:
        ls, ht = sd(w, "leakscope"), sd(w, "heaptrack")
        lss, lsan = sd(w, "leakscope-sampling"), sd(w, "lsan")
        checks = []
        if "leakscope" in tools and "heaptrack" in tools:
            checks.append(("full: added cost <= 1/3 of heaptrack's", ls,
                           None if ht is None else 1 + (ht - 1) / 3))
        if "leakscope-sampling" in tools and "lsan" in tools:
            checks.append(("sampling: added cost <= 1/2 of LSan's", lss,
                           None if lsan is None else 1 + (lsan - 1) / 2))
        if "leakscope-sampling" in tools and WL[w].threads == 4 and 1 in thread_ws:
            one = sd(thread_ws[1], "leakscope-sampling")
            checks.append(("sampling: 4t factor <= 1.3 x 1t", lss,
                           None if one is None else 1.3 * one))
        lines.extend(target_lines(w, checks))
    if lines:
        out.append("**Targets of issue 14** (on every workload: leakscope's median slowdown, on "
                   "a server its median throughput ratio, against the limit derived from the "
                   "other tool's median in this run)")
        out.append("")
        out.append("| workload | target | leakscope | limit | verdict |")
        out.append("|---|---|---:|---:|---|")
        out.extend(lines)
        out.append("")

    out.extend(failure_lines(cells, workloads, meta["reps"]))
    return "\n".join(out)


def rss_text(c: Cell | None, native: bool) -> str:
    if c is None:
        return "-"
    if c.status != "ok":
        return failure_text(c)
    if native:
        return f"{median(c.rss_mib):.1f} MiB"
    return f"{median(c.rss_mib):.1f} MiB ({fmt_x(median(c.rss_ratios))})"


def server_table(cells: dict, w: str, shown: list) -> list:
    """A server workload's own table: requests/s per test, throughput ratio, wall, RSS."""
    rows = [t for t in shown if cells.get((w, t)) is not None
            and cells[(w, t)].status != "n/a"]  # the n/a ones are listed under the tables
    if not rows:
        return []
    out = [f"**Real server: redis-benchmark against redis-server** (`{w}`: requests/s per test, "
           "median over the repetitions; throughput ratio = the native run's requests/s / the "
           "tool's, the geometric mean over the tests of each repetition, then the median and "
           "min-max over the repetitions; wall time and peak RSS of the server's process "
           "tree, from its start to the end of the tool's own work after the shutdown)", ""]
    head = ["tool"] + list(REDIS_TESTS) + ["throughput ratio", "wall time", "peak RSS",
                                           "profile written"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|---|" + "---:|" * (len(head) - 1))
    for t in rows:
        c = cells[(w, t)]
        if c.status != "ok":
            out.append(f"| {TOOL[t].label} | " + " | ".join([failure_text(c)]
                                                             + ["-"] * (len(head) - 2)) + " |")
            continue
        row = [TOOL[t].label]
        for test in REDIS_TESTS:
            row.append(fmt_rps(median([r[test] for r in c.rps if test in r])))
        if t == "native":
            row.append("-")
        elif c.throughput_ratios:
            text = fmt_x(median(c.throughput_ratios))
            if len(c.throughput_ratios) > 1:
                text += (f" ({min(c.throughput_ratios):.1f}-"
                         f"{max(c.throughput_ratios):.1f})")
            if c.failures:
                text += f" [{failure_text(c)}]"
            row.append(text)
        else:
            row.append("-")
        row.append(f"{median(c.seconds):.2f} s")
        row.append(rss_text(c, t == "native"))
        row.append(fmt_size(median(c.profile_bytes)) if c.profile_bytes else "-")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    return out


def noise_lines(runs: list) -> list:
    """How busy the rest of the machine was during these runs (empty when nothing to say)."""
    # /proc/stat counts in 10 ms ticks: only runs of 0.3 s or more say something one by one
    timed = [r for r in runs if r.other_cpus is not None and r.seconds]
    if not timed:
        return []
    total = sum(r.seconds for r in timed)
    mean = sum(r.other_cpus * r.seconds for r in timed) / total
    long_runs = [r for r in timed if r.seconds >= 0.3]
    busy = sum(1 for r in long_runs if r.other_cpus >= 0.5)
    return ["", f"Other processes kept {mean:.2f} CPU busy on average during the measured "
                f"runs; {busy} of the {len(long_runs)} runs of 0.3 s or more shared the "
                "machine with 0.5 CPU or more of other work (on a quiet machine, both "
                "numbers are near 0)."]


def failure_lines(cells: dict, workloads: list, reps: int) -> list:
    """Runs that did not count, one line per (tool, status, detail), naming the workloads;
    then the tools that do not apply to some workloads (n/a), with the reason."""
    groups, not_run = {}, {}
    for (w, t), c in cells.items():
        for r in c.failures:
            key = (t, r.status, r.detail)
            g = (not_run if r.status == "n/a" else groups).setdefault(key, {})
            g.setdefault(w, []).append(r)
    out = []
    if groups:
        out += ["Runs that did not count (logs: `runs/WORKLOAD/rREP-TOOL.*` in the output "
                "directory):", ""]
        for (t, status, detail), by_w in groups.items():
            if len(by_w) == len(workloads):
                where = "every workload"
            else:
                where = ", ".join(f"{w} ({len(rs)} of {reps})" for w, rs in by_w.items())
            out.append(f"- {TOOL[t].label}: {status} on {where}"
                       + (f": {detail}" if detail else ""))
        out.append("")
    shown = {k: v for k, v in not_run.items() if k[0] != "native-small"}
    if shown:
        out += ["Not run (n/a):", ""]
        for (t, _, detail), by_w in shown.items():
            where = "every workload" if len(by_w) == len(workloads) else ", ".join(by_w)
            out.append(f"- {TOOL[t].label} on {where}" + (f": {detail}" if detail else ""))
        out.append("")
    return out


PYTHON_REPORT_TOOLS = ("native", "leakscope", "leakscope-sampling") + tuple(
    t.name for t in TOOLS if t.python_only)


def fmt_added_s(xs) -> str:
    return "-" if not xs else f"{median(xs):+.2f} s"


def fmt_added_mib(xs) -> str:
    return "-" if not xs else f"{median(xs):+.1f} MiB"


def python_report(meta: dict, runs: list, workloads: list, tools: list) -> str:
    """The Python tools' report: leakscope against memray and tracemalloc on the Python
    workloads (docs/benchmarks.md, section Python). Empty when the run had none of them."""
    workloads = [w for w in workloads if WL[w].python]
    tools = [t for t in tools if t in PYTHON_REPORT_TOOLS]
    if not workloads or not any(TOOL[t].python_only for t in tools):
        return ""
    runs = [r for r in runs if r.workload in workloads and r.tool in tools]
    cells = summarise(runs, workloads, tools)
    secs = meta.get("workload_seconds", {})
    py_s = sum(secs.get(w, 0.0) for w in workloads)
    out = [f"Run of {meta['date']} on {meta['machine']}; leakscope {meta['leakscope_commit']}; "
           f"median of {meta['reps']} repetition(s), input scale {meta['scale']:g}; the Python "
           f"workloads took {py_s / 60:.1f} min (the whole run {meta['duration_s'] / 60:.1f} min)."]
    out.extend(noise_lines(runs))
    if meta.get("interrupted"):
        out.append("")
        out.append("**This run was interrupted**: the tables hold only the repetitions made.")
    out.append("")
    py = meta.get("python", {})
    memray = (f"memray {py['memray']}" if py.get("memray")
              else f"no memray ({py.get('no_memray', '?')})")
    path = py.get("path", PYTHON)
    if Path(path).is_relative_to(ROOT):
        path = str(Path(path).relative_to(ROOT))
    out.append(f"Interpreter, for every tool: `{path}` ({py.get('what', '?')}, "
               f"{py.get('version', '?')}); {memray}.")
    out.append("")
    out.append(f"Command: `{meta.get('command', 'bench/run.py')}`.")
    out.append("")
    out.append("**Python workloads: time, added cost and peak RSS per tool** (medians over the "
               "repetitions, min-max of the slowdown; added = the tool's minus the native run's "
               "of the same repetition)")
    out.append("")
    out.append("| workload | tool | wall time | slowdown | added cost | peak RSS | added RSS "
               "| profile or capture |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        for t in tools:
            c = cells.get((w, t))
            if c is None:
                continue
            if c.status != "ok":
                row = [failure_text(c)] + ["-"] * 5
            elif t == "native":
                row = [f"{median(c.seconds):.2f} s", "-", "-", f"{median(c.rss_mib):.1f} MiB",
                       "-", "-"]
            else:
                rss = f"{median(c.rss_mib):.1f} MiB"
                if c.rss_ratios:
                    rss += f" ({fmt_x(median(c.rss_ratios))})"
                row = [f"{median(c.seconds):.2f} s", slowdown_text(c), fmt_added_s(c.added_s),
                       rss, fmt_added_mib(c.added_rss_mib),
                       fmt_size(median(c.profile_bytes)) if c.profile_bytes else "-"]
            out.append(f"| {w} | {TOOL[t].label} | " + " | ".join(row) + " |")
    out.append("")

    def ok(w, t):
        c = cells.get((w, t))
        return c if c is not None and c.status == "ok" and c.added_s else None

    lines = []
    for w in workloads:
        ls = ok(w, "leakscope")
        if "leakscope" not in tools:
            continue
        checks = [  # (label, the other tool, which number, the limit on the ratio or None)
            ("full: added cost <= 1/2 of memray's", "memray", "time", 0.5),
            ("full: added cost / memray --trace-python-allocators's", "memray-pyalloc", "time",
             None),
            ("full: added RSS <= 1/2 of tracemalloc=1's", "tracemalloc", "rss", 0.5),
            ("full: added RSS / tracemalloc=25's", "tracemalloc-25", "rss", None),
        ]
        for label, other, what, limit in checks:
            if other not in tools:
                continue
            ref = ok(w, other)
            if what == "time":
                mine = fmt_added_s(ls.added_s) if ls else "-"
                theirs = fmt_added_s(ref.added_s) if ref else "-"
                a = median(ls.added_s) if ls else None
                b = median(ref.added_s) if ref else None
            else:
                mine = (f"{fmt_added_mib(ls.added_rss_mib)} ({median(ls.rss_mib):.1f} MiB)"
                        if ls else "-")
                theirs = (f"{fmt_added_mib(ref.added_rss_mib)} ({median(ref.rss_mib):.1f} MiB)"
                          if ref else "-")
                a = median(ls.added_rss_mib) if ls else None
                b = median(ref.added_rss_mib) if ref else None
            if a is None:
                ratio, verdict = "-", "no measurement"
            elif b is None or b <= 0:
                ratio, verdict = "-", "no reference"
            else:
                ratio = f"{a / b:.2f}"
                verdict = ("(no target)" if limit is None
                           else "met" if a / b <= limit else "**not met**")
            lines.append(f"| {w} | {label} | {mine} | {theirs} | {ratio} | {verdict} |")
    if lines:
        out.append("**Targets of the Python issue** (leakscope full against the other tool, "
                   "medians of this run; the target is on the ratio)")
        out.append("")
        out.append("| workload | target | leakscope | other tool | ratio | verdict |")
        out.append("|---|---|---:|---:|---:|---|")
        out.extend(lines)
        out.append("")
    out.extend(failure_lines(cells, workloads, meta["reps"]))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Set-up


def sh(cmd, **kw) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, **kw).stdout.strip()
    except OSError:
        return ""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (`nproc` {sh(['nproc'])}), {cpu}, Linux {platform.release()}"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def tool_versions() -> str:
    parts = [
        sh(["heaptrack", "--version"]) or "heaptrack missing",
        sh(["valgrind", "--version"]) or "valgrind missing",
        "liblsan0 " + (sh(["dpkg-query", "-W", "-f", "${Version}", "liblsan0"]) or "missing"),
        (sh(["gcc", "-dumpfullversion"]) and "gcc " + sh(["gcc", "-dumpfullversion"])) or "gcc missing",
        "sqlite3 " + (sh(["sqlite3", "--version"]).split(" ")[0] or "missing"),
        (re.sub(r"^Redis server v=(\S+).*?(malloc=\S+).*$", r"redis-server \1 (\2)",
                sh(["redis-server", "--version"])) or "redis-server missing"),
        sh([PYTHON, "--version"]) or "python3 missing",
    ]
    return ", ".join(parts)


# every C/C++ workload keeps its frame pointers, leaf functions included, so that a
# frame-pointer walk (fp-walk) sees its whole stack
FP_FLAGS = ["-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"]


def build_workloads(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    c = ["gcc", "-O2", "-g"] + FP_FLAGS
    cxx = ["g++", "-O2", "-g"] + FP_FLAGS
    builds = [
        ("measure", ["gcc", "-O2"], "measure.c"),
        ("libfpwalk.so", ["gcc", "-O2", "-shared", "-fPIC"], "fpwalk.c"),
        ("churn", c + ["-pthread"], "workloads/churn.c"),
        ("request_loop", c, "workloads/request_loop.c"),
        ("cpp_containers", cxx, "workloads/cpp_containers.cpp"),
        ("outer_chain", c, "workloads/outer_chain.c"),
        ("random_depth", c, "workloads/random_depth.c"),
        ("cpp_templates", cxx, "workloads/cpp_templates.cpp"),
        ("interpreter", c, "workloads/interpreter.c"),
    ]
    for name, compiler, src in builds:
        source = BENCH / src
        binary = bin_dir / name
        cmd = compiler + ["-o", str(binary), str(source)]
        # rebuilt when the source is newer or the command line changed (e.g. new flags)
        stamp = bin_dir / (name + ".cmd")
        line = " ".join(cmd)
        # a workload also depends on the shared header (workloads/ring.h)
        newest = max(source.stat().st_mtime, (BENCH / "workloads" / "ring.h").stat().st_mtime)
        if binary.exists() and binary.stat().st_mtime >= newest \
                and stamp.exists() and stamp.read_text() == line:
            continue
        print("$ " + line, flush=True)
        subprocess.run(cmd, check=True)
        stamp.write_text(line)


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")


def bench_venv() -> Path:
    """The venv bench/setup.sh installs memray into (the same rule as there)."""
    return Path(os.environ.get("BENCH_VENV") or target_dir() / "bench" / "venv").absolute()


def python_setup() -> dict:
    """The interpreter of the Python workloads, the same for every tool, and memray's version.

    The venv's python when bench/setup.sh's venv exists and its python really is PYTHON (a
    venv's bin/python is a symlink to the interpreter that made it); PYTHON otherwise, and
    then memray cannot run (its columns are n/a, with the reason)."""
    real = os.path.realpath(PYTHON)
    info = {"path": PYTHON, "what": f"{PYTHON} -> {real}" if real != PYTHON else PYTHON,
            "memray": None, "no_memray": ""}
    venv = bench_venv()
    venv_python = venv / "bin" / "python"
    if not venv_python.exists():
        info["no_memray"] = f"no venv at {venv}: bench/setup.sh (or --install) makes it"
    elif not os.path.exists(real) or not os.path.samefile(venv_python, real):
        info["no_memray"] = (f"{venv_python} is {os.path.realpath(venv_python)}, not {real}: "
                             "bench/setup.sh makes the venv anew")
    else:
        info["path"] = str(venv_python)
        info["what"] = f"a venv of {PYTHON}, both -> {real}"
        version = sh([str(venv_python), "-c", "import memray; print(memray.__version__)"])
        if version:
            info["memray"] = version
        else:
            info["no_memray"] = f"memray does not import in {venv}: run bench/setup.sh"
    info["version"] = sh([info["path"], "--version"]) or "python3 missing"
    return info


def git_commit() -> str:
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--", "crates"])
    return commit + (" (crates/ modified)" if dirty else "")


WL = {w.name: w for w in WORKLOADS}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="cargo xtask bench",
        description="leakscope's benchmark suite: slowdown, peak RSS and profile size against "
                    "the native run, a frame-pointer walk, heaptrack, valgrind memcheck and "
                    "LeakSanitizer (issues 3 and 14).")
    p.add_argument("--reps", type=int, help="repetitions per workload (default 5; --quick: 2)")
    p.add_argument("--quick", action="store_true",
                   help="2 repetitions and inputs at 0.2 of the full size (for trying things; "
                        "the ratios are less meaningful)")
    p.add_argument("--scale", type=float, help="input scale (default 1, --quick: 0.2)")
    p.add_argument("--memcheck-scale", type=float, default=0.2,
                   help="memcheck's input relative to the others' (default 0.2); its slowdown "
                        "is against a native run of that same input")
    p.add_argument("--tools", default=",".join(SELECTABLE),
                   help=f"comma-separated subset of {','.join(SELECTABLE)} (native is always "
                        "run; memray and tracemalloc run on the Python workloads only)")
    p.add_argument("--workloads", default=",".join(WL),
                   help=f"comma-separated subset of {','.join(WL)} (python_dicts stands for "
                        "python-dicts)")
    p.add_argument("--leakscope", type=Path,
                   help="the leakscope binary (default: build it, $CARGO_TARGET_DIR/release/leakscope)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build")
    p.add_argument("--install", action="store_true",
                   help="first run bench/setup.sh (apt-get installs what is missing)")
    p.add_argument("--out", type=Path, help="output directory (default $CARGO_TARGET_DIR/bench)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per run before it is killed")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each repetition, wait up to S seconds for the machine to be "
                        "idle (other work below 0.2 CPU over one second)")
    p.add_argument("--keep-outputs", action="store_true",
                   help="keep the profiles and heaptrack files (default: measured, then deleted)")
    p.add_argument("--update-doc", action="store_true",
                   help=f"replace the results section of docs/benchmarks.md with this run's")
    args = p.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.workloads = [w.strip().replace("_", "-") for w in args.workloads.split(",") if w.strip()]
    for t in args.tools:
        if t not in SELECTABLE:
            p.error(f"unknown tool {t!r} (known: {', '.join(SELECTABLE)})")
    for w in args.workloads:
        if w not in WL:
            p.error(f"unknown workload {w!r} (known: {', '.join(WL)})")
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    if args.scale is None:
        args.scale = 0.2 if args.quick else 1.0
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def check_prerequisites(tools: list, workloads: list) -> list:
    missing = []
    for prog in ("gcc", "g++"):
        if not shutil.which(prog):
            missing.append(prog)
    if "heaptrack" in tools and not shutil.which("heaptrack"):
        missing.append("heaptrack")
    if "memcheck" in tools and not shutil.which("valgrind"):
        missing.append("valgrind")
    if "lsan" in tools and not os.path.exists(LIBLSAN):
        missing.append(LIBLSAN + " (liblsan0)")
    if any(WL[w].python for w in workloads) and not os.path.exists(PYTHON):
        missing.append(PYTHON)
    if "sqlite3-inserts" in workloads and not shutil.which("sqlite3"):
        missing.append("sqlite3")
    if "redis" in workloads:
        for prog in ("redis-server", "redis-cli", "redis-benchmark"):
            if not shutil.which(prog):
                missing.append(prog)
    return missing


def update_doc(text: str, begin: str = DOC_BEGIN, end: str = DOC_END) -> None:
    doc = DOC.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{DOC} has no {begin} ... {end} section")
    head, rest = doc.split(begin, 1)
    _, tail_ = rest.split(end, 1)
    DOC.write_text(head + begin + "\n" + text.rstrip() + "\n" + end + tail_)
    print(f"bench: updated {DOC} between {begin} and {end}")


def wait_quiet(limit: float) -> None:
    """Wait, at most `limit` seconds, for a second in which the machine is nearly idle."""
    deadline = time.time() + limit
    while True:
        before = busy_cpu_seconds()
        time.sleep(1.0)
        busy = busy_cpu_seconds() - before
        if busy < 0.2:
            return
        if time.time() >= deadline:
            print(f"bench: the machine is still busy ({busy:.1f} CPU); going on", flush=True)
            return


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM (kill PID) stops the suite as ^C does: the running measurement is killed and
    # the runs made so far are reported
    signal.signal(signal.SIGTERM, on_sigterm)
    if args.install:
        subprocess.run(["bash", str(BENCH / "setup.sh")], check=True)
    tools = ["native"] + [t for t in SELECTABLE if t in args.tools and t != "native"]
    if "memcheck" in tools:
        tools.insert(tools.index("memcheck"), "native-small")
    workloads = [w for w in WL if w in args.workloads]
    missing = check_prerequisites(tools, workloads)
    if missing:
        print(f"bench: missing {', '.join(missing)}; run bench/setup.sh "
              "(or pass --install)", file=sys.stderr)
        return 1

    out = args.out or target_dir() / "bench"
    if args.leakscope:
        leakscope = args.leakscope.resolve()
    else:
        leakscope = target_dir() / "release" / "leakscope"
        if not args.no_build and any(t.startswith("leakscope") for t in tools):
            cmd = [os.environ.get("CARGO", "cargo"), "build", "--release", "-p", "leakscope"]
            print("$ " + " ".join(cmd), flush=True)
            if subprocess.run(cmd, cwd=ROOT).returncode != 0:
                print("bench: building leakscope failed (pass --no-build or --leakscope PATH "
                      "to measure an existing binary)", file=sys.stderr)
                return 1
    if any(t.startswith("leakscope") for t in tools) and not leakscope.exists():
        print(f"bench: no leakscope at {leakscope}", file=sys.stderr)
        return 1
    try:
        build_workloads(out / "bin")
    except subprocess.CalledProcessError as e:
        print(f"bench: building the workloads failed: {e}", file=sys.stderr)
        return 1
    runs_dir = out / "runs"
    if runs_dir.exists():
        shutil.rmtree(runs_dir)
    help_text = sh([str(leakscope), "run", "--help"]) if leakscope.exists() else ""
    py = python_setup()
    ctx = Context(out=out, bin=out / "bin", data=out / "data", runs=runs_dir,
                  leakscope=leakscope, measure=out / "bin" / "measure",
                  sampling_supported="--sample-rate" in help_text,
                  scale=args.scale, memcheck_scale=args.memcheck_scale,
                  timeout=args.timeout, keep_outputs=args.keep_outputs,
                  python=py["path"], memray_version=py["memray"], no_memray=py["no_memray"])
    ctx.data.mkdir(parents=True, exist_ok=True)
    if "leakscope-sampling" in tools and not ctx.sampling_supported:
        print("bench: this leakscope has no --sample-rate: its sampling column is n/a",
              flush=True)
    python_workloads = [w for w in workloads if WL[w].python]
    if python_workloads:
        print(f"bench: the Python workloads run {py['path']} ({py['what']}) under every tool",
              flush=True)
        if any(t in MEMRAY_TOOLS for t in tools) and not ctx.memray_version:
            print(f"bench: memray skipped (its runs are n/a): {ctx.no_memray}", flush=True)

    started = time.time()
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "nproc": sh(["nproc"]),
        "kernel": platform.release(),
        "leakscope_commit": git_commit(),
        "leakscope": str(leakscope),
        "command": " ".join(["bench/run.py"] + (sys.argv[1:] if argv is None else argv)),
        "tool_versions": tool_versions() + (
            f", memray {py['memray']}" if py["memray"] and any(
                t in MEMRAY_TOOLS for t in tools) and python_workloads else ""),
        "python": py,
        "loadavg_before": loadavg(),
        "reps": args.reps,
        "scale": args.scale,
        "memcheck_scale": args.memcheck_scale,
        "sample_rate": SAMPLE_RATE,
        "tools": tools,
        "workloads": {w: WL[w].description for w in workloads},
    }
    runs: list[Run] = []
    interrupted = False
    meta["workload_seconds"] = {}
    try:
        for w in workloads:
            wl = WL[w]
            w_started = time.time()
            w_tools = [t for t in tools if wl.python or not TOOL[t].python_only]
            # one untimed native run: page cache and the SQL file, not the measurement
            warm = run_one(ctx, wl, "native", 0)
            if warm.status != "ok":
                print(f"bench: {w} fails natively: {warm.status} {warm.detail}",
                      file=sys.stderr)
            for rep in range(1, args.reps + 1):
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                line = []
                for t in w_tools:
                    r = run_one(ctx, wl, t, rep)
                    runs.append(r)
                    line.append(f"{t} {r.seconds:.2f}s" if r.status == "ok"
                                else f"{t} {r.status}")
                print(f"[{time.time() - started:6.0f}s] {w} rep {rep}/{args.reps}: "
                      + ", ".join(line), flush=True)
            meta["workload_seconds"][w] = time.time() - w_started
    except KeyboardInterrupt:
        # report what was measured; the runs of the interrupted repetition are incomplete
        interrupted = True
        done = {r.workload for r in runs}
        workloads = [w for w in workloads if w in done]
        print("\nbench: interrupted; reporting the runs made so far", file=sys.stderr)
    meta["duration_s"] = time.time() - started
    meta["interrupted"] = interrupted
    meta["loadavg_after"] = loadavg()

    main_text = report(meta, runs, workloads, tools)
    py_text = python_report(meta, runs, workloads, tools)
    text = main_text.rstrip() + ("\n\n## Python tools\n\n" + py_text if py_text else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text + "\n")
    raw = {"meta": meta, "runs": [r.__dict__ for r in runs]}
    (out / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    print()
    print(text)
    print(f"bench: wrote {out / 'results.md'} and {out / 'results.json'} "
          f"(logs under {runs_dir})")
    if args.update_doc and not interrupted:
        # the suite's section holds a run of the suite: a run of the Python workloads alone
        # (with memray and tracemalloc) updates only the Python section
        if any(not WL[w].python for w in workloads):
            update_doc(main_text)
        if py_text:
            update_doc(py_text, DOC_PY_BEGIN, DOC_PY_END)
        if not py_text and all(WL[w].python for w in workloads):
            print("bench: --update-doc: a run of the Python workloads without memray or "
                  "tracemalloc updates neither section", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
