# Growth in a threading.Thread worker: the worker appends an entry per event to a
# module-level log that is never trimmed, while a second worker thread only churns (its
# entries are dropped after each batch). The growing site has the first worker's frames;
# the churning one's line does not grow.
# expect growing make_entry growing-site
# expect growing-frames log_events run
# expect not-growing make_scratch churn-site
import sys
import threading
import time

EVENT_LOG = []  # never trimmed


def make_entry(n):
    return ("event-%d|" % n) * 16  # growing-site


def log_events(deadline):
    n = 0
    while time.monotonic() < deadline:
        for _ in range(200):
            EVENT_LOG.append(make_entry(n))
            n += 1
        time.sleep(0.005)


def make_scratch(n):
    return ("scratch-%08d|" % n) * 16  # churn-site


def churn(deadline):
    n = 0
    while time.monotonic() < deadline:
        batch = [make_scratch(n + i) for i in range(200)]
        n += len(batch)
        time.sleep(0.005)


def main(seconds):
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=log_events, args=(deadline,), name="logger"),
        threading.Thread(target=churn, args=(deadline,), name="churner"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("threads_growth: %d events logged" % len(EVENT_LOG))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
