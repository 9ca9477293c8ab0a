"""File operations through one Python 9P client (GEFS_CLIENT: python-9p or p9fs).

Every check compares what gefsd answers with what this script wrote: create,
walk, read, write (files of 0 bytes to 100 MiB, contents compared by SHA-256),
stat, wstat (mode, mtime, name, length), rename, remove, readdir, append-only
files (DMAPPEND), truncation (OTRUNC and wstat length), ORCLOSE, open-mode
errors, and sync (a null wstat).

    ops.py --addr unix:/path/9p.sock --user alice --dir d1 --sizes 0,1,8M,100M
"""

import gefs9p as g


def size_of(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def main():
    a = g.args(lambda p: (p.add_argument("--dir", required=True),
                          p.add_argument("--sizes", default="0,1,100,8M"),
                          p.add_argument("--msize", type=int, default=None),
                          p.add_argument("--seed", type=int, default=1)))
    t = g.Timer()
    fs = g.connect(a.client, a.addr, a.user, msize=a.msize)
    chunk = fs.msize - g.IOHDRSZ
    n = 0
    d = a.dir
    fs.mkdir(d)
    st = fs.stat(d)
    g.check(st["qtype"] & g.QTDIR and st["mode"] & g.DMDIR, f"mkdir {d}: {st}")
    g.check(st["uid"] == a.user and st["muid"] == a.user, f"owner of {d}: {st}")

    # Files of every size, written and read back whole.
    sizes = [size_of(s) for s in a.sizes.split(",")]
    # Sizes around the I/O unit, where chunking bugs live.
    sizes += [chunk - 1, chunk, chunk + 1, 2 * chunk + 1]
    total = 0
    for i, size in enumerate(sizes):
        path = f"{d}/size-{i}-{size}"
        data = g.data_of(a.seed * 1000 + i, size)
        want = g.sha(data)
        fs.put(path, data)
        del data
        st = fs.stat(path)
        g.check(st["length"] == size, f"{path}: stat length {st['length']} != {size}")
        g.check(st["qtype"] == 0 and not st["mode"] & g.DMDIR, f"{path}: {st}")
        got = fs.get(path)
        g.check(len(got) == size, f"{path}: read {len(got)} bytes, wrote {size}")
        g.check(g.sha(got) == want, f"{path}: contents differ")
        del got
        total += size
        n += 4
        if size >= 16 << 20:
            fs.remove(path)  # keep the image small
    if a.client == "p9fs":
        info = fs.info(f"{d}/size-0-{sizes[0]}")
        g.check(info["size"] == sizes[0] and info["type"] == "file", f"fsspec info {info}")
        n += 1

    # Overwrite with shorter contents (OTRUNC through put), then a partial write.
    p = f"{d}/over"
    fs.put(p, b"x" * 5000)
    fs.put(p, b"short")
    g.check(fs.get(p) == b"short", "overwrite with OTRUNC")
    f, iounit = fs.open(p, g.ORDWR)
    fs.write(f, 2, b"ORT-AND-LONGER")
    g.check(fs.read(f, 0, 100) == b"shORT-AND-LONGER", "write in the middle, read back")
    g.check(fs.read(f, 16, 100) == b"", "read at EOF is empty")
    g.check(fs.read(f, 1000, 100) == b"", "read past EOF is empty")
    fs.clunk(f)
    # A write at an offset past the end leaves zeros between.
    f, _ = fs.open(p, g.OWRITE)
    fs.write(f, 100, b"!")
    fs.clunk(f)
    got = fs.get(p)
    g.check(got == b"shORT-AND-LONGER" + bytes(84) + b"!", f"sparse write: {got[:40]!r}")
    n += 5

    # Walks.
    fs.mkdir(f"{d}/a")
    fs.mkdir(f"{d}/a/b", 0o700)
    fs.mkdir(f"{d}/a/b/c")
    fs.put(f"{d}/a/b/c/leaf", b"leaf")
    g.check(fs.get(f"{d}/a/b/c/leaf") == b"leaf", "read through a 5-element walk")
    g.check(fs.stat(f"{d}/a/b")["mode"] == g.DMDIR | 0o700, "mkdir mode 0700")
    try:
        fs.clunk(fs.walk(f"{d}/a/nope/c"))
        raise g.Fail("walk through a missing name succeeded")
    except g.Rerror:
        pass  # NotFound (a partial Rwalk) or Rerror
    g.expect_rerror(lambda: fs.walk(f"{d}/nope"), "walk to a missing name")
    g.expect_rerror(lambda: fs.walk(f"{d}/a/b/c/leaf/x"), "walk through a file")
    # A walk of 16 names (MAXWELEM) from the root, the most one message may hold.
    deep = f"{d}/deep"
    fs.mkdir(deep)
    path = deep
    for k in range(14):
        path = f"{path}/{k}"
        fs.mkdir(path)
    rel = "/".join(str(k) for k in range(14))
    f = fs.walk(f"{d}/deep/{rel}")
    fs.clunk(f)
    n += 6

    # stat and wstat.
    p = f"{d}/meta"
    fs.put(p, b"0123456789" * 10, perm=0o644)
    fs.wstat(p, mode=0o600)
    g.check(fs.stat(p)["mode"] == 0o600, "wstat mode")
    fs.wstat(p, mtime=1234567890)
    g.check(fs.stat(p)["mtime"] == 1234567890, "wstat mtime")
    before = fs.stat(p)
    fs.wstat(p)  # a null wstat changes nothing
    after = fs.stat(p)
    g.check(before["mode"] == after["mode"] and before["length"] == after["length"]
            and before["mtime"] == after["mtime"], "null wstat changed the file")
    fs.wstat(p, length=10)
    g.check(fs.get(p) == b"0123456789", "wstat length shrinks")
    fs.wstat(p, length=20)
    g.check(fs.get(p) == b"0123456789" + bytes(10), "wstat length grows with zeros")
    g.expect_rerror(lambda: fs.wstat(p, mode=g.DMDIR | 0o600), "wstat setting DMDIR")
    g.expect_rerror(lambda: fs.wstat(d, mode=0o755), "wstat clearing DMDIR")
    n += 7

    # Rename (wstat name): same file, new name; the old name is gone.
    q = fs.stat(p)["qpath"]
    fs.rename(p, "meta2")
    g.check(not fs.exists(p), "old name still there after rename")
    st = fs.stat(f"{d}/meta2")
    g.check(st["qpath"] == q and st["name"] == "meta2", f"renamed stat {st}")
    g.check(fs.get(f"{d}/meta2") == b"0123456789" + bytes(10), "renamed contents")
    fs.put(f"{d}/other", b"o")
    g.expect_rerror(lambda: fs.rename(f"{d}/meta2", "other"), "rename onto an existing name")
    g.expect_rerror(lambda: fs.rename(f"{d}/meta2", "a/b"), "rename with a slash")
    g.check(fs.get(f"{d}/other") == b"o", "rename onto an existing name changed it")
    fs.rename(f"{d}/a", "a2")
    g.check(fs.get(f"{d}/a2/b/c/leaf") == b"leaf", "renamed directory keeps its tree")
    n += 7

    # Readdir: enough entries that one read does not hold them all.
    ld = f"{d}/list"
    fs.mkdir(ld)
    want = {}
    for k in range(300):
        name = f"entry-{k:03d}-" + "n" * (k % 40)
        fs.put(f"{ld}/{name}", b"z" * (k % 17), perm=0o640)
        want[name] = k % 17
    fs.mkdir(f"{ld}/subdir")
    ents = fs.listdir(ld)
    got = {e["name"]: e["length"] for e in ents if not e["mode"] & g.DMDIR}
    g.check(got == want, f"readdir: {len(got)} files, want {len(want)}; "
            f"missing {sorted(set(want) - set(got))[:5]} extra {sorted(set(got) - set(want))[:5]}")
    dirs = [e["name"] for e in ents if e["mode"] & g.DMDIR]
    g.check(dirs == ["subdir"], f"readdir directories {dirs}")
    g.check(all(e["uid"] == a.user for e in ents), "readdir owners")
    g.check(len({e["qpath"] for e in ents}) == len(ents), "readdir qids unique")
    n += 4
    if a.client == "p9fs":
        g.check(sorted(fs.ls_names(ld)) == sorted(want) + ["subdir"], "fsspec ls")
        n += 1

    # Remove: files, an empty directory; a non-empty one is refused.
    g.expect_rerror(lambda: fs.remove(ld), "remove of a non-empty directory")
    for name in list(want)[:150]:
        fs.remove(f"{ld}/{name}")
        del want[name]
    ents = fs.listdir(ld)
    g.check({e["name"] for e in ents} == set(want) | {"subdir"}, "readdir after removes")
    fs.remove(f"{ld}/subdir")
    for name in want:
        fs.remove(f"{ld}/{name}")
    g.check(fs.listdir(ld) == [], "empty after removing everything")
    fs.remove(ld)
    g.check(not fs.exists(ld), "removed directory still there")
    g.expect_rerror(lambda: fs.remove(ld), "remove of a removed directory")
    n += 5

    # Append-only files (DMAPPEND): every write goes to the end, whatever its offset.
    p = f"{d}/log"
    f, _ = fs.create(p, g.DMAPPEND | 0o644, g.OWRITE)
    fs.write(f, 0, b"abc")
    fs.write(f, 0, b"def")
    fs.write(f, 1, b"ghi")
    fs.clunk(f)
    st = fs.stat(p)
    g.check(st["mode"] & g.DMAPPEND and st["qtype"] & g.QTAPPEND, f"append-only stat {st}")
    g.check(fs.get(p) == b"abcdefghi", f"append-only contents {fs.get(p)!r}")
    f, _ = fs.open(p, g.ORDWR)
    fs.write(f, 0, b"jkl")
    g.check(fs.read(f, 0, 100) == b"abcdefghijkl", "append through ORDWR")
    fs.clunk(f)
    # wstat can turn the bit off: then offsets count again.
    fs.wstat(p, mode=0o644)
    f, _ = fs.open(p, g.OWRITE)
    fs.write(f, 0, b"X")
    fs.clunk(f)
    g.check(fs.get(p) == b"Xbcdefghijkl", "after clearing DMAPPEND writes go to offset")
    n += 5

    # Truncation: OTRUNC at open, and wstat length 0.
    p = f"{d}/trunc"
    fs.put(p, b"t" * 10000)
    f, _ = fs.open(p, g.OWRITE | g.OTRUNC)
    g.check(fs.stat(p)["length"] == 0, "OTRUNC empties the file")
    fs.write(f, 0, b"xy")
    fs.clunk(f)
    g.check(fs.get(p) == b"xy", "write after OTRUNC")
    fs.wstat(p, length=0)
    g.check(fs.stat(p)["length"] == 0 and fs.get(p) == b"", "wstat length 0")
    n += 3

    # ORCLOSE: the file goes away at clunk.
    p = f"{d}/tmp"
    fs.put(p, b"tmp")
    f, _ = fs.open(p, g.OREAD | g.ORCLOSE)
    g.check(fs.read(f, 0, 10) == b"tmp", "read of an ORCLOSE fid")
    fs.clunk(f)
    g.check(not fs.exists(p), "ORCLOSE file survived its clunk")
    n += 2

    # Open-mode errors.
    p = f"{d}/modes"
    fs.put(p, b"m")
    f, _ = fs.open(p, g.OREAD)
    g.expect_rerror(lambda: fs.write(f, 0, b"x"), "write on an OREAD fid")
    fs.clunk(f)
    f, _ = fs.open(p, g.OWRITE)
    g.expect_rerror(lambda: fs.read(f, 0, 1), "read on an OWRITE fid")
    fs.clunk(f)
    g.expect_rerror(lambda: fs.create(p, 0o644), "create of an existing name")
    g.expect_rerror(lambda: fs.open(d, g.OWRITE), "open of a directory for writing")
    g.expect_rerror(lambda: fs.create(f"{p}/x", 0o644), "create in a file")
    n += 5

    fs.sync()
    n += 1
    fs.close()
    g.report(client=a.client, checks=n, bytes=total, secs=round(t.s(), 2),
             msize=fs.msize)


if __name__ == "__main__":
    main()
