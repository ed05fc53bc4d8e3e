#!/usr/bin/env python3
"""A stand-in for `leakscope run` built on valgrind, to check the end-to-end harness itself.

It implements the part of leakscope's contract that the e2e tests hold it to (the refusals, the
pass-through of stdio, arguments, environment and exit status, the JSON report with children) by
running the program under memcheck and converting memcheck's logs. Since the corpus headers are
memcheck's numbers, every e2e test must pass against it; a test that fails here is a harness bug:

    LEAKSCOPE_E2E_BIN=crates/cli/tests/harness/reference_leakscope.py \
        cargo test -p leakscope --test e2e

It is slow (everything runs under valgrind) and is not a leak detector: it only mirrors memcheck.
"""
import glob
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

KINDS = {
    "definitely lost": "definitely_lost",
    "indirectly lost": "indirectly_lost",
    "possibly lost": "possibly_lost",
    "still reachable": "still_reachable",
    "suppressed": "suppressed",
}
ALLOCATORS = ("malloc", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc",
              "valloc", "operator new", "reallocarray")


def refuse(message):
    sys.stderr.write("leakscope: " + message + "\n")
    sys.exit(2)


def preflight(program):
    agent = os.environ.get("LEAKSCOPE_AGENT")
    if agent and not os.path.exists(agent):
        refuse(f"the agent {agent} was not found")
    path = program if "/" in program else shutil.which(program)
    if path is None or not os.path.exists(path):
        refuse(f"{program}: program not found")
    mode = os.stat(path).st_mode
    if not mode & 0o111 or not os.access(path, os.X_OK):
        refuse(f"{program} is not executable")
    if mode & (stat.S_ISUID | stat.S_ISGID):
        refuse(f"{program} is setuid or setgid: the dynamic linker ignores LD_PRELOAD for it")
    headers = subprocess.run(["readelf", "-lW", path], capture_output=True).stdout
    if b"INTERP" not in headers:
        refuse(f"{program} is statically linked: no agent can be preloaded into it")
    return path


def parse_log(text):
    """(summary, leaks) of one memcheck log, or None when it has no leak check."""
    lines = [re.sub(r"^==\d+==\s?", "", line) for line in text.splitlines()]
    summary = {kind: {"bytes": 0, "blocks": 0} for kind in KINDS.values()}
    leaks = []
    checked = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("All heap blocks were freed"):
            checked = True
        m = re.match(r"^(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):"
                     r" ([\d,]+) bytes in ([\d,]+) blocks", line)
        if m:
            checked = True
            summary[KINDS[m.group(1)]] = {"bytes": int(m.group(2).replace(",", "")),
                                          "blocks": int(m.group(3).replace(",", ""))}
        m = re.match(r"^([\d,]+)(?: \(([\d,]+) direct.*?\))? bytes in ([\d,]+) blocks are (.*?) in"
                     r" loss record", line)
        if m:
            stack = []
            i += 1
            while i < len(lines) and lines[i].strip():
                frame = re.match(r"^\s*(?:at|by) 0x([0-9A-Fa-f]+): (.*?)(?: \([^()]*\))?$",
                                 lines[i])
                if frame and not frame.group(2).startswith(ALLOCATORS):
                    stack.append({"address": "0x" + frame.group(1).lower(),
                                  "function": frame.group(2)})
                i += 1
            leaks.append({"kind": KINDS[m.group(4)],
                          "bytes": int((m.group(2) or m.group(1)).replace(",", "")),
                          "blocks": int(m.group(3).replace(",", "")),
                          "stack": stack})
            continue
        i += 1
    return (summary, leaks) if checked else None


def main():
    args = sys.argv[1:]
    if not args or args[0] != "run":
        refuse("usage: leakscope run [--format json] [--output FILE] [--error-exitcode N]"
               " -- PROGRAM [ARGS]")
    args = args[1:]
    output, error_exitcode, suppressions = None, None, []
    while args and args[0] != "--":
        option = args.pop(0)
        if option == "--format":
            args.pop(0)
        elif option == "--output":
            output = args.pop(0)
        elif option == "--error-exitcode":
            error_exitcode = int(args.pop(0))
        elif option == "--suppressions":
            suppressions.append(args.pop(0))
        else:
            refuse(f"unknown option {option}")
    if len(args) < 2:
        refuse("no program given")
    program, program_args = args[1], args[2:]
    path = preflight(program)
    logs = tempfile.mkdtemp(prefix="reference-leakscope-")
    child = subprocess.Popen(["valgrind", "--leak-check=full", "--show-leak-kinds=all",
                              "--error-exitcode=0", "--num-callers=50",
                              f"--log-file={logs}/vg.%p.log"]
                             + [f"--suppressions={s}" for s in suppressions]
                             + [path] + program_args)
    child.wait()
    documents = {}
    for log in glob.glob(logs + "/vg.*.log"):
        pid = int(re.search(r"vg\.(\d+)\.log$", log).group(1))
        with open(log) as f:
            parsed = parse_log(f.read())
        if parsed:
            documents[pid] = {"format_version": 1, "pid": pid, "summary": parsed[0],
                              "leaks": parsed[1], "exit": {"code": 0, "signal": None},
                              "children": []}
    shutil.rmtree(logs, ignore_errors=True)
    rc = child.returncode
    report = documents.pop(child.pid)
    report.update({
        "tool": {"name": "leakscope-reference", "version": "0"},
        "command": [program] + program_args,
        "exit": {"code": rc if rc >= 0 else None, "signal": -rc if rc < 0 else None},
        "children": list(documents.values()),
    })
    if output:
        with open(output, "w") as f:
            json.dump(report, f, indent=1)
    if rc < 0:
        signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    lost = sum(report["summary"][k]["blocks"] for k in ("definitely_lost", "possibly_lost"))
    sys.exit(error_exitcode if error_exitcode is not None and lost > 0 else rc)


if __name__ == "__main__":
    main()
