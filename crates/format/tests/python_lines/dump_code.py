"""Dumps, as JSON on stdout, every code object of the sample and of this version's snippets,
with its raw line table and, for every code unit, the position the running interpreter itself
reports for it: what leakscope_format::python_lines::position must answer.

Run by each interpreter the Rust test (crates/format/tests/python_lines.rs) finds:

    python3 dump_code.py sample.py

It only compiles, never runs, what it dumps. It must run on every version tested (3.9 on):
syntax of later versions is in strings, compiled only where the version has it.

Output: {"version": [major, minor, micro], "codes": [{"source", "name", "first_line",
"table" (hex), "units", "expected"}]}, where "expected" has one element per code unit (2-byte
_Py_CODEUNIT, inline caches included): null where the interpreter reports no line, else
[line, column], the column 1-based (col_offset + 1) or null where it has none.
"""

import dis
import json
import sys

VERSION = sys.version_info[:2]


def expected_3_9(code):
    """3.9: PyCode_Addr2Line(co, 2 * unit), which is the line of the last start that
    dis.findlinestarts gives at or before the unit's byte offset."""
    starts = list(dis.findlinestarts(code))
    units = len(code.co_code) // 2
    expected = []
    for unit in range(units):
        line = None
        for address, start_line in starts:
            if address > 2 * unit:
                break
            line = start_line
        expected.append(None if line is None else [line, None])
    return expected


def expected_3_10(code):
    """3.10: the range of co_lines() (byte offsets, end excluded) holding the unit's first
    byte; its line may be None."""
    ranges = list(code.co_lines())
    units = len(code.co_code) // 2
    expected = []
    for unit in range(units):
        found = None
        for start, end, line in ranges:
            if start <= 2 * unit < end:
                if line is not None:
                    found = [line, None]
                break
        expected.append(found)
    return expected


def expected_3_11(code):
    """3.11 on: co_positions() has one (line, end line, column, end column) per code unit;
    where it ends early, the units after have no position."""
    positions = list(code.co_positions())
    units = len(code.co_code) // 2
    expected = []
    for unit in range(units):
        if unit >= len(positions) or positions[unit][0] is None:
            expected.append(None)
            continue
        line, _end_line, column, _end_column = positions[unit]
        expected.append([line, None if column is None else column + 1])
    return expected


def table_of(code):
    # 3.10 still has co_lnotab, but computed from co_linetable for old readers: the raw table
    # the agent records, and the interpreter reads, is co_linetable from 3.10 on.
    return code.co_lnotab if VERSION < (3, 10) else code.co_linetable


def expected_of(code):
    if VERSION < (3, 10):
        return expected_3_9(code)
    if VERSION < (3, 11):
        return expected_3_10(code)
    return expected_3_11(code)


def walk(code, source, out):
    out.append({
        "source": source,
        # co_qualname (3.11 on) tells nested functions of the same name apart in a failure.
        "name": getattr(code, "co_qualname", code.co_name),
        "first_line": code.co_firstlineno,
        "table": table_of(code).hex(),
        "units": len(code.co_code) // 2,
        "expected": expected_of(code),
    })
    for constant in code.co_consts:
        if isinstance(constant, type(code)):
            walk(constant, source, out)


def snippets():
    """(name, source) of the synthetic sources: each for what its table must hold."""
    # Line numbers above 100000: a line delta that needs a 3-byte varint (3.11 on) and
    # hundreds of split pairs (3.9, 3.10), in the module and inside a function.
    yield "far_lines", (
        "\n" * 100050
        + "def far_away(x):\n    y = x + 1\n"
        + "\n" * 300
        + "    return y\n"
        + "far_away(1)\n"
    )
    # A column above 4095: a column varint of 3 bytes.
    yield "very_wide", (
        "def very_wide(value, other):\n    return (" + " " * 5000 + "value + other(1))\n"
    )
    # A function whose first line is far down: co_firstlineno itself is large, so that small
    # deltas add to a large base.
    yield "late_first_line", "\n" * 70000 + "def late():\n    return call(1,\n  2)\n"
    if VERSION >= (3, 10):
        yield "match", MATCH
    if VERSION >= (3, 11):
        yield "except_star", EXCEPT_STAR
    if VERSION >= (3, 12):
        yield "type_parameters", TYPE_PARAMETERS


# match (3.10 on): its patterns jump forwards and backwards between lines, and guards.
MATCH = """
def matcher(command):
    match command.split():
        case [action]:
            return action
        case ["go", direction] if direction in (
            "north",
            "south",
        ):
            return direction
        case {"x": x, "y": y, **rest}:
            return x + y
        case Point(x=0, y=0) | Point(x=1, y=1):
            return "origin"
        case [*items] if len(items) > 3:
            return items
        case str() as text:
            return text
        case _:
            return None
"""

# except* (3.11 on): exception groups.
EXCEPT_STAR = """
def groups():
    try:
        raise ExceptionGroup("many", [ValueError(1), TypeError(2)])
    except* ValueError as values:
        handle(values)
    except* TypeError:
        pass
    finally:
        cleanup()
"""

# Type parameters and aliases (3.12 on): code objects of their own for the annotation scopes.
TYPE_PARAMETERS = """
type Pair[T] = tuple[T, T]

def first[T: (int, str), *Ts, **P](items: list[T]) -> T:
    return items[0]

class Box[T]:
    def get(self) -> T:
        return self.value
"""


def main():
    sample_path = sys.argv[1]
    with open(sample_path, encoding="utf-8") as sample:
        sources = [("sample.py", sample.read())]
    sources.extend(snippets())
    codes = []
    for name, source in sources:
        walk(compile(source, name, "exec"), name, codes)
    json.dump({"version": list(sys.version_info[:3]), "codes": codes}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
