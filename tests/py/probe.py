"""A well-behaved client that must keep being served while others misbehave.

Attaches, writes a probe file, prints {"ready": true}, then loops stat + read
(comparing the contents) until a line arrives on stdin; every failure and the
slowest round are reported at the end. It never reconnects: a dropped
connection is a failure.

    probe.py --addr unix:/path/9p.sock
"""

import sys
import threading
import time

import gefs9p as g


def main():
    a = g.args(lambda p: p.add_argument("--name", default="probe"))
    fs = g.connect(a.client, a.addr, a.user, msize=65536)
    want = g.data_of(99, 20000)
    fs.put(a.name, want)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    g.report(ready=True)
    ops, failures, slowest = 0, [], 0.0
    while not stop.is_set():
        t = time.monotonic()
        try:
            st = fs.stat("")
            g.check(st["qtype"] & g.QTDIR, "root is not a directory")
            got = fs.get(a.name)
            g.check(got == want, "probe file contents differ")
        except Exception as e:  # noqa: BLE001 -- every failure counts
            failures.append(f"{type(e).__name__}: {e}")
            if len(failures) > 20:
                break
            time.sleep(0.1)
            continue
        slowest = max(slowest, time.monotonic() - t)
        ops += 1
        time.sleep(0.005)
    g.report(ops=ops, failures=failures, slowest_ms=round(slowest * 1000, 1))


if __name__ == "__main__":
    main()
