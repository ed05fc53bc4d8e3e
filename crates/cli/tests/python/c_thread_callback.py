# Growth in a thread that C started: leaky_ext.run_callbacks_in_c_thread starts a pthread
# of the extension's own, which takes the GIL with PyGILState_Ensure and calls on_event()
# over and over; on_event appends an entry to a module-level list that is never trimmed.
# The growing site has the Python callback's frames, below the extension's thread function.
# needs leaky_ext
# expect growing on_event growing-site
# expect growing-native callback_thread_main
import sys

import leaky_ext

RECEIVED = []  # never trimmed
_count = [0]


def on_event():
    n = _count[0]
    _count[0] = n + 1
    RECEIVED.append(("callback-%d|" % n) * 16)  # growing-site


def main(seconds):
    calls = leaky_ext.run_callbacks_in_c_thread(on_event, seconds, 200, 5000)
    print("c_thread_callback: %d callbacks, %d kept" % (calls, len(RECEIVED)))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
