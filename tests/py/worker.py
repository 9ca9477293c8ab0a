"""One client of a concurrent run (the 8-client test and the soak).

Connects, prints {"ready": ...}, waits for a line on stdin (so every client
starts at once), then runs seeded random operations for --rounds or
--seconds: in its own directory (create, overwrite, append, read, stat,
readdir, rename, remove, sync), every read and listing compared with its own
model; and in the shared directory, files with names of its own, whose
listings must show each of its files exactly once. Any wrong answer or
Rerror ends it with exit 1. Finally it prints its counts and the shared
names it left.

    worker.py --addr tcp:127.0.0.1:PORT --id 3 --dir w3 --shared shared --rounds 300
"""

import random
import time

import gefs9p as g


def main():
    a = g.args(lambda p: (p.add_argument("--id", type=int, required=True),
                          p.add_argument("--dir", required=True),
                          p.add_argument("--shared", default="shared"),
                          p.add_argument("--rounds", type=int, default=0),
                          p.add_argument("--seconds", type=float, default=0),
                          p.add_argument("--msize", type=int, default=None),
                          p.add_argument("--max-size", type=int, default=256 << 10),
                          p.add_argument("--no-wait", action="store_true")))
    rng = random.Random(a.id * 7777 + 1)
    fs = g.connect(a.client, a.addr, a.user, msize=a.msize)
    g.report(ready=a.id, msize=fs.msize)
    if not a.no_wait:
        import sys
        sys.stdin.readline()
    fs.mkdir(a.dir)
    if not fs.exists(a.shared):
        try:
            fs.mkdir(a.shared, 0o777)
        except g.Rerror:
            g.check(fs.exists(a.shared), "shared directory")  # another client won
    model = {}  # name -> contents, in a.dir
    shared = set()  # names of ours in a.shared
    counts = {}
    serial = 0
    t0 = time.monotonic()
    rounds = 0

    def size():
        r = rng.random()
        if r < 0.1:
            return 0
        if r < 0.95:
            return rng.randrange(1, 16 << 10)
        return rng.randrange(16 << 10, a.max_size + 1)

    while True:
        if a.rounds and rounds >= a.rounds:
            break
        if a.seconds and time.monotonic() - t0 >= a.seconds:
            break
        rounds += 1
        ops = ["create", "shared-create", "shared-list", "sync"]
        if model:
            ops += ["overwrite", "append", "read", "read", "stat", "list", "rename",
                    "remove"]
        if shared:
            ops += ["shared-remove", "shared-rename"]
        op = rng.choice(ops)
        counts[op] = counts.get(op, 0) + 1
        if op == "create" or (op == "overwrite" and len(model) < 3):
            serial += 1
            name = f"f{serial}"
            data = g.data_of(rng.random(), size())
            fs.put(f"{a.dir}/{name}", data, perm=0o644)
            model[name] = data
        elif op == "overwrite":
            name = rng.choice(sorted(model))
            data = g.data_of(rng.random(), size())
            fs.put(f"{a.dir}/{name}", data, perm=0o644)
            model[name] = data
        elif op == "append":
            name = rng.choice(sorted(model))
            extra = g.data_of(rng.random(), rng.randrange(1, 4096))
            f, iounit = fs.open(f"{a.dir}/{name}", g.OWRITE)
            fs.write_all(f, len(model[name]), extra, iounit)
            fs.clunk(f)
            model[name] += extra
        elif op == "read":
            name = rng.choice(sorted(model))
            got = fs.get(f"{a.dir}/{name}")
            g.check(got == model[name], f"client {a.id}: {a.dir}/{name}: read "
                    f"{len(got)} bytes, want {len(model[name])} (contents differ)")
        elif op == "stat":
            name = rng.choice(sorted(model))
            st = fs.stat(f"{a.dir}/{name}")
            g.check(st["length"] == len(model[name]) and st["name"] == name,
                    f"client {a.id}: stat {name}: {st}")
        elif op == "list":
            got = {e["name"]: e["length"] for e in fs.listdir(a.dir)}
            want = {k: len(v) for k, v in model.items()}
            g.check(got == want, f"client {a.id}: listing of {a.dir}: {sorted(got)} "
                    f"want {sorted(want)}")
        elif op == "rename":
            old = rng.choice(sorted(model))
            serial += 1
            new = f"r{serial}"
            fs.rename(f"{a.dir}/{old}", new)
            model[new] = model.pop(old)
        elif op == "remove":
            name = rng.choice(sorted(model))
            fs.remove(f"{a.dir}/{name}")
            del model[name]
        elif op == "shared-create":
            serial += 1
            name = f"c{a.id}-{serial}"
            fs.put(f"{a.shared}/{name}", name.encode(), perm=0o666)
            shared.add(name)
        elif op == "shared-list":
            ents = [e["name"] for e in fs.listdir(a.shared)]
            g.check(len(ents) == len(set(ents)), f"client {a.id}: duplicate names in "
                    f"the shared directory")
            ours = {n for n in ents if n.startswith(f"c{a.id}-")}
            g.check(ours == shared, f"client {a.id}: shared listing has {sorted(ours)}, "
                    f"want {sorted(shared)}")
        elif op == "shared-remove":
            name = rng.choice(sorted(shared))
            fs.remove(f"{a.shared}/{name}")
            shared.discard(name)
        elif op == "shared-rename":
            old = rng.choice(sorted(shared))
            serial += 1
            new = f"c{a.id}-{serial}"
            fs.rename(f"{a.shared}/{old}", new)
            g.check(fs.get(f"{a.shared}/{new}") == old.encode(), "renamed shared file")
            shared.discard(old)
            shared.add(new)
            # Its contents keep the old name: remember what it holds.
            fs.put(f"{a.shared}/{new}", new.encode(), perm=0o666)
        elif op == "sync":
            fs.sync()
    # Everything once more.
    for name, data in model.items():
        g.check(fs.get(f"{a.dir}/{name}") == data, f"client {a.id}: final read of {name}")
    for name in shared:
        g.check(fs.get(f"{a.shared}/{name}") == name.encode(), f"final read of {name}")
    fs.close()
    g.report(id=a.id, client=a.client, rounds=rounds, ops=counts, files=len(model),
             shared=sorted(shared), msize=fs.msize, secs=round(time.monotonic() - t0, 1))


if __name__ == "__main__":
    main()
