# global_list.py fixed by keeping no global list: each batch's records are aggregated into a
# few numbers and dropped with the batch. Only a batch's records are ever live: nothing grows.
# expect growing none
# expect not-growing parse_record steady-site
import sys
import time


def parse_record(rid):
    return {"id": "r%08d" % rid, "text": ("record-%08d;" % rid) * 16}  # steady-site


def process_batch(first, count):
    batch = []
    for rid in range(first, first + count):
        record = parse_record(rid)
        batch.append(record)
    return len(batch), sum(len(r["text"]) for r in batch)


def main(seconds):
    deadline = time.monotonic() + seconds
    rid = 0
    records = 0
    text_bytes = 0
    while time.monotonic() < deadline:
        n, size = process_batch(rid, 200)
        records += n
        text_bytes += size
        rid += 200
        time.sleep(0.005)
    print("no_global_list: processed %d records, %d text bytes" % (records, text_bytes))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
