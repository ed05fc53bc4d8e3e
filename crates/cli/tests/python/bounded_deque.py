# global_list.py fixed with a bounded buffer: the same records, kept in a
# collections.deque(maxlen=1000), which drops the oldest record as each new one comes in.
# Memory fills within the first moments and stays flat: nothing grows.
# expect growing none
# expect not-growing parse_record steady-site
import collections
import sys
import time

RECENT = collections.deque(maxlen=1000)  # the last 1000 records only


def parse_record(rid):
    return {"id": "r%08d" % rid, "text": ("record-%08d;" % rid) * 16}  # steady-site


def process_batch(first, count):
    for rid in range(first, first + count):
        record = parse_record(rid)
        RECENT.append(record)


def main(seconds):
    deadline = time.monotonic() + seconds
    rid = 0
    while time.monotonic() < deadline:
        process_batch(rid, 200)
        rid += 200
        time.sleep(0.005)
    print("bounded_deque: processed %d records, kept %d" % (rid, len(RECENT)))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
