#!/usr/bin/env python3
"""The JVM under leakscope (issue 12): how close to its native speed a Java service runs, and
how promptly it exits.

    python3 bench/java.py [--reps N] [--leakscope PATH] [--update-doc] ...

Compiles bench/workloads/JavaService.java (a two-thread request loop: parsing, a bounded LRU
of sessions, a Deflater per 16 requests) and runs it, in each repetition, once under each
tool in a fixed order so that drift in the machine's speed hits them alike:

- native: `java` alone;
- leakscope --no-java: the native agent only (every malloc recorded), the JVM not attached;
- leakscope: the default, with class histograms every 10 s, leakscope's flight recording
  and a perf map with each histogram;
- leakscope --java-interval 1s: histograms (each a full collection) ten times as often;
- leakscope sampling: --sample-rate 524288, the JVM watched;
- heaptrack, when installed: every malloc with its stack, as a reference.

Per run it records the wall time, the service's own throughput over its measured phase
(requests/s, printed by the program: the JVM's steady speed, start-up and exit left out), how
long the run took after the program printed its result (the JVM's exit, the recording's
dump and leakscope's report), CPU time and peak RSS. Ratios are taken per repetition against
that repetition's native run; the report gives medians and ranges. It is written to
$CARGO_TARGET_DIR/bench/java.md (default target/bench/) and, with --update-doc, into
docs/benchmarks.md's JVM section.

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

DOC_BEGIN = "<!-- bench-java-results:begin -->"
DOC_END = "<!-- bench-java-results:end -->"
SOURCE = suite.WORKLOADS_SRC / "JavaService.java"
RESULT = re.compile(r"^java-service: (\d+) requests, (\d+) requests/s, checksum (-?\d+)$")
JVM_FLAGS = ["-Xmx256m"]

TOOLS = [
    ("native", "native"),
    ("leakscope-no-java", "leakscope --no-java"),
    ("leakscope", "leakscope (JVM watched, 10 s histograms)"),
    ("leakscope-1s", "leakscope --java-interval 1s"),
    ("leakscope-sampling", "leakscope sampling (JVM watched)"),
    ("heaptrack", "heaptrack"),
]


def command(tool: str, leakscope: Path, java_argv: list, stem: Path) -> list:
    if tool == "native":
        return java_argv
    if tool == "heaptrack":
        return ["heaptrack", "-o", str(stem) + ".heaptrack"] + java_argv
    cmd = [str(leakscope), "run", "--keep", str(stem) + ".profile", "--format", "json",
           "--output", str(stem) + ".json", "--quiet"]
    if tool == "leakscope-no-java":
        cmd.append("--no-java")
    if tool == "leakscope-1s":
        cmd += ["--java-interval", "1s"]
    if tool == "leakscope-sampling":
        cmd += ["--sample-rate", str(suite.SAMPLE_RATE)]
    return cmd + ["--"] + java_argv


def run_once(cmd: list, timeout: float) -> dict:
    """Run cmd; wall time, the program's result line, when it came, CPU and peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result, line_at, stdout = None, None, []
    for line in proc.stdout:
        stdout.append(line)
        m = RESULT.match(line.strip())
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
        f"{meta['requests']} measured requests on 2 threads after {meta['warmup']} warm-up "
        f"ones per thread, `java {' '.join(JVM_FLAGS)}` ({meta['java']}). {meta['machine']}; "
        f"load average before: {meta['load']}. Median (min-max) over the repetitions; ratios "
        "per repetition against that repetition's native run.",
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--leakscope", type=Path, default=suite.target_dir() / "release" / "leakscope",
                        help="the leakscope binary (default: the release build)")
    parser.add_argument("--no-build", action="store_true", help="do not build leakscope")
    parser.add_argument("--warmup", type=int, default=300_000,
                        help="warm-up requests per thread (default 300000)")
    parser.add_argument("--requests", type=int, default=1_500_000,
                        help="measured requests per thread (default 1500000)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="before each repetition wait up to S seconds for an idle second")
    parser.add_argument("--update-doc", action="store_true",
                        help="write the report into docs/benchmarks.md")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    for tool in ("java", "javac"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: no `{tool}` on PATH (Debian: openjdk-17-jdk-headless, "
                             "which .ci/setup.sh installs)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "leakscope"],
                       cwd=suite.ROOT, check=True)
    if not args.leakscope.exists():
        raise SystemExit(f"bench: no leakscope at {args.leakscope}")
    out = suite.target_dir() / "bench"
    classes = out / "java"
    runs_dir = out / "java-runs"
    classes.mkdir(parents=True, exist_ok=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["javac", "-d", str(classes), str(SOURCE)], check=True)
    java_argv = (["java"] + JVM_FLAGS + ["-cp", str(classes), "JavaService",
                                         str(args.warmup), str(args.requests)])
    tools = [(t, label) for t, label in TOOLS if t != "heaptrack" or shutil.which("heaptrack")]
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": suite.git_commit(),
        "reps": args.reps,
        "warmup": args.warmup,
        "requests": 2 * args.requests,
        # java -version writes to standard error
        "java": (subprocess.run(["java", "-version"], capture_output=True, text=True)
                 .stderr.splitlines() or ["java"])[0],
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
                r = run_once(command(tool, args.leakscope, java_argv, stem), timeout=600)
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
    (out / "java.md").write_text(text)
    print(text)
    if args.update_doc:
        suite.update_doc(text, DOC_BEGIN, DOC_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
