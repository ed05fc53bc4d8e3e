# The sample that crates/format/tests/python_lines.rs has every interpreter compile (through
# dump_code.py), to compare leakscope's decoding of its line tables with the interpreter's own.
# It is never run, only compiled: names need not exist. It must compile on every version
# tested (3.9 on), so syntax of later versions (match, except*, type parameters) lives in
# dump_code.py's version-guarded snippets instead. Each construct is here for what it makes
# the compiler write into a line table; the comment above it says what.

import os
import sys


# Decorators: the function's first line is the first decorator's, and the code that applies
# them runs after the `def` line, so the module's line goes back (a negative delta).
@staticmethod
@decorate(
    option=1,
)
def decorated(a, b=(1,
                    2), *args, **kwargs):
    return a + b


# A call spread over lines: arguments are evaluated on later lines and the call itself is
# attributed back to the first (negative deltas inside one statement).
def multi_line_call():
    result = compute(
        first,
        second,
        third(
            nested,
        ),
    )
    return result


# Loops: the jump back to the header goes to an earlier line; `else` clauses and `break`.
def loops(items):
    total = 0
    for item in items:
        if item:
            continue
        total += item
    else:
        total -= 1
    while total > 0:
        total -= 2
        if total == 5:
            break
    return total


# Lambdas and comprehensions of every kind: each is its own code object (before 3.12) or inlined
# (3.12 on), with a body on its definition's line or spread over several.
def functional(values):
    square = lambda x: x * x
    shifted = lambda x, y=1: (
        x
        + y
    )
    as_list = [square(v) for v in values if v]
    as_set = {v for v in values}
    as_dict = {v: shifted(v) for v in values
               if v > 0}
    lazily = (v
              for v in values)
    nested = [[a * b for a in range(b)] for b in values]
    return as_list, as_set, as_dict, lazily, nested


# Nested functions and classes, closures (cell variables), nonlocal and global.
COUNTER = 0


def outer(x):
    y = x + 1

    def inner(z):
        nonlocal y
        y += z

        class Local:
            attribute = y

            def method(self):
                global COUNTER
                COUNTER += 1
                return self.attribute

            @property
            def prop(self):
                return y
        return Local
    return inner


class TopLevel(Base, metaclass=Meta):
    """A class body is a code object of its own."""

    field: int = 3

    def __init__(self, value):
        super().__init__()
        self.value = value

    @classmethod
    def create(cls):
        return cls(0)


# Generators: yield, yield from, and a generator that returns a value.
def generator(n):
    i = 0
    while i < n:
        received = yield i
        if received:
            i += received
        i += 1
    yield from range(3)
    return i


# Coroutines: await, async for, async with, an async generator and async comprehensions.
async def coroutine(session):
    async with session.get(url) as response, lock:
        data = await response.read()
    async for chunk in stream():
        await process(chunk)
    results = [x async for x in aiter_of(data)]
    return data, results


async def async_generator():
    for i in range(3):
        yield await fetch(i)


# try/except/else/finally, nested, with a re-raise and several handlers.
def exceptions(path):
    try:
        handle = open(path)
    except (OSError, ValueError) as error:
        print(error)
        raise
    except Exception:
        pass
    else:
        try:
            return handle.read()
        finally:
            handle.close()
    finally:
        cleanup()
    return None


# with: several context managers, nested, and one spread over lines.
def contexts(a, b):
    with open(a) as first, open(b) as second:
        data = first.read() + second.read()
    with (
        open(a)
    ) as third:
        with third:
            pass
    return data


# Assignment forms, unpacking, walrus, f-strings, chained comparisons, assert, del, star args.
def assorted(values, *rest, key=None, **options):
    first, *middle, last = values
    if (n := len(values)) > 10:
        message = f"{n} values, first {first!r:>10}, options {options}"
    assert 0 < n < 100, "too many"
    del middle
    values[1:3] = rest
    return {**options, "key": key}, [*rest, *values], message


# A line whose bytecode is longer than 255 bytes (3.9's byte increment and 3.10's range length
# are split over several pairs) and longer than 8 code units in one location entry (3.11 on).
# A line after it: 3.9's lnotab only records where a line ends when another one follows.
def long_bytecode():
    values = [aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aa, bb, cc, dd, ee, ff, gg, hh, ii, jj, kk, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz]
    return values


# Columns: below 80 (short form), 80 to 127 (one-line form), above 127 and above 255 (long
# form), on one very long line.
def wide_line():
    return alpha(1) + beta(2) + gamma(3) + delta(4) + epsilon(5) + zeta(6) + eta(7) + theta(8) + iota(9) + kappa(10) + lambda_(11) + mu(12) + nu(13) + xi(14) + omicron(15) + pi(16) + rho(17) + sigma(18) + tau(19) + upsilon(20) + phi(21) + chi(22) + psi(23) + omega(24) + alpha(25) + beta(26) + gamma(27) + delta(28) + epsilon(29) + zeta(30) + eta(31) + theta(32) + iota(33) + kappa(34) + lambda_(35) + mu(36) + nu(37) + xi(38)


# Columns are UTF-8 byte offsets: characters of two and three bytes before a call move it.
def non_ascii():
    return "été — café" + translate("über") + len("日本語") + call(1)


# Line gaps inside one function: more than 127 lines (a line delta that does not fit a signed
# byte) and more than 255 (nor an unsigned one), forwards and, through the loop, backwards.
def gaps(n):
    start = n












































































































































    middle = start + 1












































































































































































































































































































    for i in range(n):
        end = middle + i








































































































































































































        if end:
            continue
    return end


# A function longer than 300 lines, with statements of many kinds so that its table has every
# kind of entry many times over.
def long_function(data):
    total = 0
    total += data[1]
    if total > 2:
        total -= 2
    name_3 = [x for x in data if x > 3]
    total = call_4(total,
                     4)
    for v in data[:5]:
        total ^= v
    try:
        total //= 6
    except ZeroDivisionError:
        total = 0
    with guard_7():
        total += 1
    text_8 = f"{total} and 8"
    total += data[9]
    if total > 10:
        total -= 10
    name_11 = [x for x in data if x > 11]
    total = call_12(total,
                     12)
    for v in data[:13]:
        total ^= v
    try:
        total //= 14
    except ZeroDivisionError:
        total = 0
    with guard_15():
        total += 1
    text_16 = f"{total} and 16"
    total += data[17]
    if total > 18:
        total -= 18
    name_19 = [x for x in data if x > 19]
    total = call_20(total,
                     20)
    for v in data[:21]:
        total ^= v
    try:
        total //= 22
    except ZeroDivisionError:
        total = 0
    with guard_23():
        total += 1
    text_24 = f"{total} and 24"
    total += data[25]
    if total > 26:
        total -= 26
    name_27 = [x for x in data if x > 27]
    total = call_28(total,
                     28)
    for v in data[:29]:
        total ^= v
    try:
        total //= 30
    except ZeroDivisionError:
        total = 0
    with guard_31():
        total += 1
    text_32 = f"{total} and 32"
    total += data[33]
    if total > 34:
        total -= 34
    name_35 = [x for x in data if x > 35]
    total = call_36(total,
                     36)
    for v in data[:37]:
        total ^= v
    try:
        total //= 38
    except ZeroDivisionError:
        total = 0
    with guard_39():
        total += 1
    text_40 = f"{total} and 40"
    total += data[41]
    if total > 42:
        total -= 42
    name_43 = [x for x in data if x > 43]
    total = call_44(total,
                     44)
    for v in data[:45]:
        total ^= v
    try:
        total //= 46
    except ZeroDivisionError:
        total = 0
    with guard_47():
        total += 1
    text_48 = f"{total} and 48"
    total += data[49]
    if total > 50:
        total -= 50
    name_51 = [x for x in data if x > 51]
    total = call_52(total,
                     52)
    for v in data[:53]:
        total ^= v
    try:
        total //= 54
    except ZeroDivisionError:
        total = 0
    with guard_55():
        total += 1
    text_56 = f"{total} and 56"
    total += data[57]
    if total > 58:
        total -= 58
    name_59 = [x for x in data if x > 59]
    total = call_60(total,
                     60)
    for v in data[:61]:
        total ^= v
    try:
        total //= 62
    except ZeroDivisionError:
        total = 0
    with guard_63():
        total += 1
    text_64 = f"{total} and 64"
    total += data[65]
    if total > 66:
        total -= 66
    name_67 = [x for x in data if x > 67]
    total = call_68(total,
                     68)
    for v in data[:69]:
        total ^= v
    try:
        total //= 70
    except ZeroDivisionError:
        total = 0
    with guard_71():
        total += 1
    text_72 = f"{total} and 72"
    total += data[73]
    if total > 74:
        total -= 74
    name_75 = [x for x in data if x > 75]
    total = call_76(total,
                     76)
    for v in data[:77]:
        total ^= v
    try:
        total //= 78
    except ZeroDivisionError:
        total = 0
    with guard_79():
        total += 1
    text_80 = f"{total} and 80"
    total += data[81]
    if total > 82:
        total -= 82
    name_83 = [x for x in data if x > 83]
    total = call_84(total,
                     84)
    for v in data[:85]:
        total ^= v
    try:
        total //= 86
    except ZeroDivisionError:
        total = 0
    with guard_87():
        total += 1
    text_88 = f"{total} and 88"
    total += data[89]
    if total > 90:
        total -= 90
    name_91 = [x for x in data if x > 91]
    total = call_92(total,
                     92)
    for v in data[:93]:
        total ^= v
    try:
        total //= 94
    except ZeroDivisionError:
        total = 0
    with guard_95():
        total += 1
    text_96 = f"{total} and 96"
    total += data[97]
    if total > 98:
        total -= 98
    name_99 = [x for x in data if x > 99]
    total = call_100(total,
                     100)
    for v in data[:101]:
        total ^= v
    try:
        total //= 102
    except ZeroDivisionError:
        total = 0
    with guard_103():
        total += 1
    text_104 = f"{total} and 104"
    total += data[105]
    if total > 106:
        total -= 106
    name_107 = [x for x in data if x > 107]
    total = call_108(total,
                     108)
    for v in data[:109]:
        total ^= v
    try:
        total //= 110
    except ZeroDivisionError:
        total = 0
    with guard_111():
        total += 1
    text_112 = f"{total} and 112"
    total += data[113]
    if total > 114:
        total -= 114
    name_115 = [x for x in data if x > 115]
    total = call_116(total,
                     116)
    for v in data[:117]:
        total ^= v
    try:
        total //= 118
    except ZeroDivisionError:
        total = 0
    with guard_119():
        total += 1
    text_120 = f"{total} and 120"
    total += data[121]
    if total > 122:
        total -= 122
    name_123 = [x for x in data if x > 123]
    total = call_124(total,
                     124)
    for v in data[:125]:
        total ^= v
    try:
        total //= 126
    except ZeroDivisionError:
        total = 0
    with guard_127():
        total += 1
    text_128 = f"{total} and 128"
    total += data[129]
    if total > 130:
        total -= 130
    name_131 = [x for x in data if x > 131]
    total = call_132(total,
                     132)
    for v in data[:133]:
        total ^= v
    try:
        total //= 134
    except ZeroDivisionError:
        total = 0
    with guard_135():
        total += 1
    text_136 = f"{total} and 136"
    total += data[137]
    if total > 138:
        total -= 138
    name_139 = [x for x in data if x > 139]
    total = call_140(total,
                     140)
    for v in data[:141]:
        total ^= v
    try:
        total //= 142
    except ZeroDivisionError:
        total = 0
    with guard_143():
        total += 1
    text_144 = f"{total} and 144"
    total += data[145]
    if total > 146:
        total -= 146
    name_147 = [x for x in data if x > 147]
    total = call_148(total,
                     148)
    for v in data[:149]:
        total ^= v
    try:
        total //= 150
    except ZeroDivisionError:
        total = 0
    with guard_151():
        total += 1
    text_152 = f"{total} and 152"
    total += data[153]
    if total > 154:
        total -= 154
    name_155 = [x for x in data if x > 155]
    total = call_156(total,
                     156)
    for v in data[:157]:
        total ^= v
    try:
        total //= 158
    except ZeroDivisionError:
        total = 0
    with guard_159():
        total += 1
    text_160 = f"{total} and 160"
    total += data[161]
    if total > 162:
        total -= 162
    name_163 = [x for x in data if x > 163]
    total = call_164(total,
                     164)
    for v in data[:165]:
        total ^= v
    try:
        total //= 166
    except ZeroDivisionError:
        total = 0
    with guard_167():
        total += 1
    text_168 = f"{total} and 168"
    total += data[169]
    if total > 170:
        total -= 170
    name_171 = [x for x in data if x > 171]
    total = call_172(total,
                     172)
    return total


# Module-level code after everything else, including a loop, so that the module's own code
# object has negative deltas and many lines.
if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(long_function(argument))
    sys.exit(0)
