# The seed's data job: every record it processes is appended to a module-level list that is
# never cleared, so the list and the records in it grow for as long as the job runs (tens of
# MB in a few seconds). The growth is at the line that creates the appended record.
# expect growing parse_record growing-site
# expect growing-frames process_batch main
import sys
import time

RESULTS = []  # never cleared: the leak


def parse_record(rid):
    return {"id": "r%d" % rid, "text": ("record-%d;" % rid) * 16}  # growing-site


def process_batch(first, count):
    for rid in range(first, first + count):
        record = parse_record(rid)
        RESULTS.append(record)


def main(seconds):
    deadline = time.monotonic() + seconds
    rid = 0
    while time.monotonic() < deadline:
        process_batch(rid, 200)
        rid += 200
        time.sleep(0.005)
    print("global_list: kept %d records" % len(RESULTS))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
