# An unbounded memo cache keyed by request id: the handler stores the result it computed for
# each request in a module-level dict, but request ids never repeat, so no entry is ever used
# again and the dict only grows. The growth is at the line that computes the stored result.
# expect growing compute_result growing-site
# expect growing-frames handle_request serve main
import sys
import time

_MEMO = {}  # request id -> result; never evicted


def compute_result(request_id):
    return ("%08d|" % request_id) * 40  # growing-site


def handle_request(request_id):
    result = _MEMO.get(request_id)
    if result is None:
        result = compute_result(request_id)
        _MEMO[request_id] = result
    return len(result)


def serve(first, count):
    served = 0
    for request_id in range(first, first + count):
        served += handle_request(request_id)
    return served


def main(seconds):
    deadline = time.monotonic() + seconds
    next_id = 1000
    while time.monotonic() < deadline:
        serve(next_id, 200)
        next_id += 200
        time.sleep(0.005)
    print("memo_dict: %d cached results" % len(_MEMO))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
