"""Tflush during large reads and writes, with python-9p's raw messages.

flush(5): the reply to a flushed request, if the server sends one, must come
before the Rflush, never after; after the Rflush the old tag is free again.
Each round pipelines a batch of 1 MiB Treads (and some Twrites) without
reading their replies, so the later ones are still queued behind the socket,
then a Tflush of every one of them (a second Tflush of some, and one of a tag
nobody used); it reads every reply and checks the order per tag. Then it
reuses every flushed tag for a Tstat: each must be answered by an Rstat (a
stale reply to a flushed request would show up here).

    flush.py --addr unix:/path/9p.sock --rounds 20
"""

import gefs9p as g


def main():
    a = g.args(lambda p: (p.add_argument("--rounds", type=int, default=20),
                          p.add_argument("--batch", type=int, default=24)))
    import py9p
    fs = g.Py9pFS(a.addr, a.user, msize=(1 << 20) + g.IOHDRSZ)
    sock = fs.c.transport
    msize = fs.msize
    count = msize - g.IOHDRSZ
    size = 16 << 20
    data = g.data_of(7, size)
    fs.put("flushme", data)
    f, _ = fs.open("flushme", g.ORDWR)

    def send(m):
        py9p.write_message(sock, m)

    def recv():
        return py9p.read_message(sock, max_size=msize)

    answered = flushed = errors = 0
    for r in range(a.rounds):
        reqs = {}
        for i in range(a.batch):
            tag = 10 + i
            off = ((r * a.batch + i) * 7919 * 4096) % (size - count)
            write = i % 5 == 4
            reqs[tag] = (write, off)
            if write:
                send(py9p.Twrite(fid=f, offset=off, data=data[off:off + count], tag=tag))
            else:
                send(py9p.Tread(fid=f, offset=off, count=count, tag=tag))
        flushes = {}
        for i, tag in enumerate(reversed(list(reqs))):
            flushes[1000 + i] = tag
            if i % 3 == 0:
                flushes[2000 + i] = tag  # a second flush of the same request
        flushes[3000] = 999  # a tag nobody used
        for ftag, old in flushes.items():
            send(py9p.Tflush(oldtag=old, tag=ftag))
        seen = []  # (tag, message) in arrival order
        waiting = set(flushes)
        while waiting:
            m = recv()
            seen.append(m.tag)
            if m.tag in flushes:
                g.check(isinstance(m, py9p.Rflush), f"round {r}: tag {m.tag} got {m}")
                waiting.discard(m.tag)
                continue
            g.check(m.tag in reqs, f"round {r}: reply with unknown tag {m}")
            g.check(seen.count(m.tag) == 1, f"round {r}: two replies for tag {m.tag}")
            early = [ft for ft, old in flushes.items() if old == m.tag and ft in seen]
            g.check(not early, f"round {r}: the reply to tag {m.tag} came after its "
                    f"Rflush (tags {early}): {seen}")
            write, off = reqs[m.tag]
            if isinstance(m, py9p.Rerror):
                errors += 1
            elif write:
                g.check(isinstance(m, py9p.Rwrite) and m.count == count, f"round {r}: {m}")
            else:
                g.check(isinstance(m, py9p.Rread) and m.data == data[off:off + count],
                        f"round {r}: tag {m.tag}: Rread of the wrong contents")
        got = {t for t in seen if t in reqs}
        answered += len(got)
        flushed += len(reqs) - len(got)
        # Every flushed tag is free again: its next reply is for the new request.
        for tag in reqs:
            send(py9p.Tstat(fid=0, tag=tag))
        for _ in reqs:
            m = recv()
            g.check(m.tag in reqs and isinstance(m, py9p.Rstat),
                    f"round {r}: after the Rflushes, a reused tag answered {m}")
    fs.clunk(f)
    # Whatever was flushed, the file is whole and readable.
    g.check(g.sha(fs.get("flushme")) == g.sha(data), "file contents after flushed writes")
    fs.close()
    g.report(rounds=a.rounds, requests=a.rounds * a.batch, answered=answered,
             flushed=flushed, rerrors=errors)


if __name__ == "__main__":
    main()
