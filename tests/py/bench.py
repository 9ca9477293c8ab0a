"""Loopback 9P throughput: sequential write and read of one large file, and
small-file creates, through one Python client. Prints one JSON line.

    bench.py --client python-9p --addr tcp:127.0.0.1:PORT --user alice \\
        --msize 1048600 --size 1G --files 2000 --file-size 1024
    bench.py --client p9fs --version 9P2000.L --aname /tmp/export ...   (diod)

Writes are not followed by a sync (diod's land in the host page cache too);
reads follow the writes, so both servers read from memory. Each I/O message
carries iounit (msize - 24) bytes, or the server's smaller iounit.
"""

import argparse
import json
import os
import socket
import time

import gefs9p as g


def size_of(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def py9p_bench(a):
    fs = g.Py9pFS(a.addr, a.user, a.aname, a.msize)
    c = fs.c
    fs.mkdir(a.dir)
    chunk = fs.msize - g.IOHDRSZ
    block = os.urandom(chunk)
    f, iounit = fs.create(f"{a.dir}/big", 0o644, g.OWRITE)
    n = min(chunk, iounit)
    t = time.monotonic()
    off = 0
    while off < a.size:
        off += c.write(f, block[:min(n, a.size - off)], off)
    w = time.monotonic() - t
    fs.clunk(f)
    f, iounit = fs.open(f"{a.dir}/big", g.OREAD)
    t = time.monotonic()
    off = 0
    while True:
        b = c.read(f, n, off)
        if not b:
            break
        off += len(b)
    r = time.monotonic() - t
    fs.clunk(f)
    assert off == a.size, (off, a.size)
    small = os.urandom(a.file_size)
    t = time.monotonic()
    for i in range(a.files):
        f, _ = fs.create(f"{a.dir}/s{i}", 0o644, g.OWRITE)
        c.write(f, small, 0)
        fs.clunk(f)
    cr = time.monotonic() - t
    fs.close()
    return fs.msize, n, w, r, cr


def p9fs_bench(a):
    import p9fs
    from py9p import py9p as lib
    kind, where = g.parse_addr(a.addr)

    class FS(p9fs.P9FileSystem):
        def _connect(self_):
            s = socket.socket(socket.AF_UNIX) if kind == "unix" else socket.socket()
            s.connect(where)
            cred = lib.Credentials(user=self_.username)
            self_.client = lib.Client(s, credentials=cred, ver=self_.version,
                                      aname=self_.aname, msize=a.msize)

    fs = FS("x", 0, a.user, version=a.version, aname=a.aname, skip_instance_cache=True)
    c = fs.client
    fs.mkdir(a.dir, create_parents=False)
    chunk = c.msize - g.IOHDRSZ
    block = os.urandom(chunk)
    big = f"{a.dir}/big"
    fs._mknod(big, 0o644)
    f = fs._open_fid(big, os.O_WRONLY)
    n = min(chunk, f.iounit)
    t = time.monotonic()
    off = 0
    while off < a.size:
        off += c._write(f.fid, off, block[:min(n, a.size - off)]).count
    w = time.monotonic() - t
    fs._release_fid(f)
    f = fs._open_fid(big, os.O_RDONLY)
    t = time.monotonic()
    off = 0
    while True:
        b = c._read(f.fid, off, n).data
        if not b:
            break
        off += len(b)
    r = time.monotonic() - t
    fs._release_fid(f)
    assert off == a.size, (off, a.size)
    small = os.urandom(a.file_size)
    t = time.monotonic()
    for i in range(a.files):
        p = f"{a.dir}/s{i}"
        fs._mknod(p, 0o644)
        f = fs._open_fid(p, os.O_WRONLY)
        c._write(f.fid, 0, small)
        fs._release_fid(f)
    cr = time.monotonic() - t
    return c.msize, n, w, r, cr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", default=g.client_name())
    p.add_argument("--server", default="gefsd")
    p.add_argument("--addr", required=True)
    p.add_argument("--user", default="alice")
    p.add_argument("--aname", default="")
    p.add_argument("--version", default="9P2000")
    p.add_argument("--msize", type=int, default=(1 << 20) + g.IOHDRSZ)
    p.add_argument("--size", type=size_of, default=1 << 30)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--file-size", type=int, default=1024)
    p.add_argument("--dir", default="bench")
    a = p.parse_args()
    msize, n, w, r, cr = (py9p_bench if a.client == "python-9p" else p9fs_bench)(a)
    mb = a.size / 1e6
    print(json.dumps({
        "server": a.server, "client": a.client, "version": a.version, "msize": msize,
        "io_bytes": n, "size": a.size, "write_MBps": round(mb / w, 1),
        "read_MBps": round(mb / r, 1), "files": a.files, "file_size": a.file_size,
        "creates_per_s": round(a.files / cr, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
