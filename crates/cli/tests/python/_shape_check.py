# Not a test program: runs one of them natively under tracemalloc (Python's own allocation
# tracer, which attributes each block to the Python line that allocated it) and prints, for
# every line of the program marked `# NAME-site`, the bytes allocated at that line and still
# live at 40% and at 70% of the run and at its end, as one JSON object per line:
#     {"marker": "growing-site", "line": 12, "at_40": 1234567, "at_70": 2345678,
#      "at_end": 3456789}
# tests/e2e/python.rs uses it to check the programs' shapes without leakscope.
#
#     python3 _shape_check.py PROGRAM SECONDS
import json
import re
import runpy
import sys
import threading
import tracemalloc


def markers(path):
    found = []
    with open(path) as f:
        for number, text in enumerate(f, 1):
            match = re.search(r"#\s*([a-z-]+-site)\s*$", text)
            if match:
                found.append((match.group(1), number))
    return found


def live_bytes(snapshot, path, line):
    traces = snapshot.filter_traces([tracemalloc.Filter(True, path, lineno=line)]).traces
    return sum(trace.size for trace in traces)


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    marked = markers(path)
    snapshots = {}

    def take(name):
        snapshots[name] = tracemalloc.take_snapshot()

    tracemalloc.start(1)
    timers = [
        threading.Timer(fraction * seconds, take, args=(name,))
        for fraction, name in [(0.4, "at_40"), (0.7, "at_70")]
    ]
    for timer in timers:
        timer.start()
    sys.argv = [path, str(seconds)]
    program_globals = runpy.run_path(path, run_name="__main__")
    for timer in timers:
        timer.join()
    take("at_end")
    tracemalloc.stop()
    for marker, line in marked:
        print(json.dumps({
            "marker": marker,
            "line": line,
            "at_40": live_bytes(snapshots["at_40"], path, line),
            "at_70": live_bytes(snapshots["at_70"], path, line),
            "at_end": live_bytes(snapshots["at_end"], path, line),
        }))
    del program_globals


main()
