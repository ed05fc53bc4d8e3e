#!/usr/bin/env python3
"""Managed runtimes under leakscope (issues 12 and 13): how close to its native speed a Java
or Node.js service runs, and how promptly it exits.

    python3 bench/runtimes.py java|node [--reps N] [--leakscope PATH] [--update-doc] ...

Each runtime has a service-shaped workload in bench/workloads/ that prints its own throughput
over a measured phase after a warm-up (the runtime's steady speed, start-up and exit left
out):

- java: JavaService.java, two worker threads; each request parses a header line, looks its
  session up in a bounded LinkedHashMap LRU, builds a response, and one in 16 compresses it
  with a java.util.zip.Deflater (zlib's state malloc'd and freed natively). Run with -Xmx256m
  natively; under leakscope --no-java (the agent only); leakscope (the JVM watched: class
  histograms every 10 s, leakscope's flight recording, a perf map per histogram); leakscope
  --java-interval 1s; leakscope sampling (watched); heaptrack.
- node: node_service.js, the same request shape on one isolate (a bounded Map, JSON.stringify,
  zlib.deflateSync per 128 requests), yielding to the event loop every 10,000 requests. Run
  natively; under leakscope (the default: V8's sampling heap profiler, listener counts and
  heap snapshots while the heap is under --js-heap-snapshot-limit); leakscope
  --js-heap-snapshot-limit 0 (no snapshots); leakscope sampling; heaptrack.

In each repetition every tool runs once, in a fixed order, so that drift in the machine's
speed hits them alike. Per run: wall time, the program's throughput, the time from its
result line to the end of the run (the runtime's exit, the agent's exit scan, the JVM's
recording dump, leakscope's report), CPU time and peak RSS. Ratios are taken per repetition
against that repetition's native run; the report gives medians and ranges. It is written to
$CARGO_TARGET_DIR/bench/<runtime>.md (default target/bench/) and, with --update-doc, into
docs/benchmarks.md's section for the runtime.

Standard library only; shares run.py's helpers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as suite  # noqa: E402  (bench/run.py: doc updates, machine facts, medians)

SAMPLE_RATE = str(suite.SAMPLE_RATE)


class Runtime:
    """A runtime's workload and the tools it runs under."""

    def __init__(self, name, doc_marker, result, tools, prepare, argv, needs):
        self.name = name
        self.doc_begin = f"<!-- bench-{doc_marker}-results:begin -->"
        self.doc_end = f"<!-- bench-{doc_marker}-results:end -->"
        # the program's result line: requests, requests/s, checksum
        self.result = re.compile(result)
        # (id, column label, leakscope options; None: not leakscope)
        self.tools = tools
        # prepare(out_dir) -> None: compile what the workload needs
        self.prepare = prepare
        # argv(out_dir, warmup, requests) -> the program's command line
        self.argv = argv
        # programs that must be on PATH
        self.needs = needs


JVM_FLAGS = ["-Xmx256m"]


def prepare_java(out: Path) -> None:
    (out / "java").mkdir(parents=True, exist_ok=True)
    subprocess.run(["javac", "-d", str(out / "java"), str(suite.WORKLOADS_SRC / "JavaService.java")],
                   check=True)


RUNTIMES = {
    "java": Runtime(
        "java", "java",
        r"^java-service: (\d+) requests, (\d+) requests/s, checksum (-?\d+)$",
        [
            ("native", "native", None),
            ("leakscope-no-java", "leakscope --no-java", ["--no-java"]),
            ("leakscope", "leakscope (JVM watched, 10 s histograms)", []),
            ("leakscope-1s", "leakscope --java-interval 1s", ["--java-interval", "1s"]),
            ("leakscope-sampling", "leakscope sampling (JVM watched)",
             ["--sample-rate", SAMPLE_RATE]),
            ("heaptrack", "heaptrack", None),
        ],
        prepare_java,
        lambda out, warmup, requests: ["java"] + JVM_FLAGS + [
            "-cp", str(out / "java"), "JavaService", str(warmup), str(requests)],
        ("java", "javac"),
    ),
    "node": Runtime(
        "node", "node",
        r"^node-service: (\d+) requests, (\d+) requests/s, checksum (-?\d+)$",
        [
            ("native", "native", None),
            ("leakscope", "leakscope (with heap snapshots)", []),
            ("leakscope-no-snapshots", "leakscope --js-heap-snapshot-limit 0",
             ["--js-heap-snapshot-limit", "0"]),
            ("leakscope-sampling", "leakscope sampling", ["--sample-rate", SAMPLE_RATE]),
            ("heaptrack", "heaptrack", None),
        ],
        lambda out: None,
        lambda out, warmup, requests: [
            "node", str(suite.WORKLOADS_SRC / "node_service.js"), str(warmup), str(requests)],
        ("node",),
    ),
}
DEFAULT_SIZES = {"java": (300_000, 1_500_000), "node": (100_000, 600_000)}


def command(runtime: Runtime, tool: str, leakscope: Path, argv: list, stem: Path) -> list:
    options = next(opts for t, _, opts in runtime.tools if t == tool)
    if tool == "native":
        return argv
    if tool == "heaptrack":
        return ["heaptrack", "-o", str(stem) + ".heaptrack"] + argv
    return ([str(leakscope), "run", "--keep", str(stem) + ".profile", "--format", "json",
             "--output", str(stem) + ".json", "--quiet"] + options + ["--"] + argv)


def run_once(cmd: list, result_line: re.Pattern, timeout: float) -> dict:
    """Run cmd; wall time, the program's result line, when it came, CPU and peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result, line_at, stdout = None, None, []
    for line in proc.stdout:
        stdout.append(line)
        m = result_line.match(line.strip())
        if m:
            result, line_at = m, time.monotonic()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if ended - started > timeout:
        raise RuntimeError(f"{cmd[0]} took {ended - started:.0f} s")
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}, stdout {''.join(stdout)!r}, "
                           f"stderr {stderr[-400:]!r}")
    return {
        "seconds": ended - started,
        "rps": int(result.group(2)),
        "checksum": result.group(3),
        "after_result_s": ended - line_at,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
    }


def spread(xs: list, fmt) -> str:
    if not xs:
        return "-"
    return f"{fmt(suite.median(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def report(meta: dict, runs: dict, failures: list, tools: list) -> str:
    native = runs["native"]
    lines = [
        f"Run of {meta['date']}, leakscope {meta['commit']}, {meta['reps']} repetitions, "
        f"{meta['requests']} measured requests after {meta['warmup']} warm-up ones "
        f"(`{meta['command']}`, {meta['version']}). {meta['machine']}; load average before: "
        f"{meta['load']}. Median (min-max) over the repetitions; ratios per repetition "
        "against that repetition's native run.",
        "",
        "| tool | throughput (requests/s) | throughput / native | wall time | wall / native "
        "| after the result | CPU / native | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, label in tools:
        rs = runs.get(tool, [])
        pairs = [(r, n) for r, n in zip(rs, native) if r and n]
        if not pairs:
            lines.append(f"| {label} | failed | | | | | | |")
            continue
        ok = [r for r, _ in pairs]
        lines.append(
            f"| {label} | {spread([r['rps'] for r in ok], lambda x: f'{x:,.0f}')} "
            f"| {spread([r['rps'] / n['rps'] for r, n in pairs], lambda x: f'{x:.2f}')} "
            f"| {spread([r['seconds'] for r in ok], lambda x: f'{x:.2f} s')} "
            f"| {spread([r['seconds'] / n['seconds'] for r, n in pairs], lambda x: f'{x:.2f}x')} "
            f"| {spread([r['after_result_s'] for r in ok], lambda x: f'{x:.2f} s')} "
            f"| {spread([r['cpu_s'] / n['cpu_s'] for r, n in pairs], lambda x: f'{x:.2f}x')} "
            f"| {suite.fmt_size(suite.median([r['maxrss_kib'] * 1024 for r in ok]))} |")
    if failures:
        lines.append("")
    for tool, rep, why in failures:
        lines.append(f"- {tool}, repetition {rep + 1} failed: {why}")
    return "\n".join(lines) + "\n"


def version_of(program: str) -> str:
    """`java -version` (on standard error) or `node --version`, first line."""
    flag = "-version" if program == "java" else "--version"
    done = subprocess.run([program, flag], capture_output=True, text=True)
    return ((done.stderr or done.stdout).splitlines() or [program])[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runtime", choices=sorted(RUNTIMES))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--leakscope", type=Path, default=suite.target_dir() / "release" / "leakscope",
                        help="the leakscope binary (default: the release build)")
    parser.add_argument("--no-build", action="store_true", help="do not build leakscope")
    parser.add_argument("--warmup", type=int,
                        help="warm-up requests (per thread; default java 300000, node 100000)")
    parser.add_argument("--requests", type=int,
                        help="measured requests (per thread; default java 1500000, node 600000)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="before each repetition wait up to S seconds for an idle second")
    parser.add_argument("--update-doc", action="store_true",
                        help="write the report into docs/benchmarks.md")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    runtime = RUNTIMES[args.runtime]
    warmup = args.warmup or DEFAULT_SIZES[runtime.name][0]
    requests = args.requests or DEFAULT_SIZES[runtime.name][1]

    for program in runtime.needs:
        if not shutil.which(program):
            raise SystemExit(f"bench: no `{program}` on PATH (.ci/setup.sh installs it)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "leakscope"],
                       cwd=suite.ROOT, check=True)
    if not args.leakscope.exists():
        raise SystemExit(f"bench: no leakscope at {args.leakscope}")
    out = suite.target_dir() / "bench"
    runs_dir = out / f"{runtime.name}-runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    runtime.prepare(out)
    program_argv = runtime.argv(out, warmup, requests)
    threads = 2 if runtime.name == "java" else 1
    tools = [(t, label) for t, label, _ in runtime.tools
             if t != "heaptrack" or shutil.which("heaptrack")]
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": suite.git_commit(),
        "reps": args.reps,
        "warmup": warmup,
        "requests": threads * requests,
        "command": " ".join([Path(program_argv[0]).name] + program_argv[1:2]
                            if runtime.name == "node" else ["java"] + JVM_FLAGS),
        "version": version_of(program_argv[0]),
        "machine": suite.machine(),
        "load": suite.loadavg(),
    }
    runs: dict = {tool: [] for tool, _ in tools}
    failures: list = []
    checksum = None
    for rep in range(args.reps):
        if args.wait_quiet:
            suite.wait_quiet(args.wait_quiet)
        for tool, _ in tools:
            stem = runs_dir / f"{tool}-{rep}"
            try:
                r = run_once(command(runtime, tool, args.leakscope, program_argv, stem),
                             runtime.result, timeout=600)
                if checksum is not None and r["checksum"] != checksum:
                    raise RuntimeError(f"checksum {r['checksum']}, native gave {checksum}")
                checksum = checksum or r["checksum"]
                runs[tool].append(r)
                print(f"bench: rep {rep + 1} {tool}: {r['seconds']:.2f} s, "
                      f"{r['rps']:,} requests/s, {r['after_result_s']:.2f} s after the result",
                      flush=True)
            except RuntimeError as e:
                runs[tool].append(None)
                failures.append((tool, rep, str(e)))
                print(f"bench: rep {rep + 1} {tool} failed: {e}", flush=True)
            for leftover in runs_dir.glob(f"{tool}-{rep}*"):
                leftover.unlink()
    text = report(meta, runs, failures, tools)
    (out / f"{runtime.name}.md").write_text(text)
    print(text)
    if args.update_doc:
        suite.update_doc(text, runtime.doc_begin, runtime.doc_end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
