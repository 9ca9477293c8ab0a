"""Shared helpers of the Python end-to-end tests of gefsd.

Two adapters give the test scripts one small file API over the two independent
9P2000 clients from PyPI, each using only its own library for the wire:

- Py9pFS: python-9p's py9p.Client (plan9port's codec, multiplexed, raw messages);
- P9fsFS: p9fs's fsspec P9FileSystem (its own py9p package) for what fsspec
  does (create, write, read, ls, info, mkdir, rm) and its py9p.Client for the
  rest (open modes, wstat, sync).

Both install a top-level package named py9p, so each runs in its own venv and
this module imports the client library only inside the adapter chosen.

Addresses: "unix:/path/to/sock" or "tcp:127.0.0.1:PORT".
"""

import argparse
import hashlib
import json
import os
import random
import struct
import sys
import time

# Plan 9 mode and open bits (intro(5), open(5), stat(5)).
DMDIR = 0x80000000
DMAPPEND = 0x40000000
DMEXCL = 0x20000000
DMTMP = 0x04000000
QTDIR = 0x80
QTAPPEND = 0x40
OREAD, OWRITE, ORDWR, OEXEC = 0, 1, 2, 3
OTRUNC = 0x10
ORCLOSE = 0x40
NOFID = 0xFFFFFFFF
NOTAG = 0xFFFF
IOHDRSZ = 24
U16, U32, U64 = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


class Rerror(Exception):
    """The server answered Rerror (either client's error, normalized)."""

    def __init__(self, ename):
        if isinstance(ename, bytes):
            ename = ename.decode("utf-8", "replace")
        super().__init__(str(ename))
        self.ename = str(ename)


class NotFound(Rerror):
    """A walk that did not reach its last element."""


class Fail(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def expect_rerror(fn, what):
    """fn() must fail with Rerror; returns the error string."""
    try:
        r = fn()
    except Rerror as e:
        return e.ename
    raise Fail(f"{what}: expected Rerror, got {r!r}")


def data_of(seed, n):
    """n deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def encode_wstat(name="", uid="", gid="", muid="", mode=U32, mtime=U32, atime=U32,
                 length=U64):
    """A stat(5) buffer for Twstat whose unset fields are "don't touch" (~0, "")."""
    strs = b"".join(struct.pack("<H", len(s.encode())) + s.encode()
                    for s in (name, uid, gid, muid))
    body = struct.pack("<HIBIQIIIQ", U16, U32, 0xFF, U32, U64, mode, atime, mtime,
                       length) + strs
    return struct.pack("<H", len(body)) + body


def parse_addr(addr):
    if addr.startswith("unix:"):
        return ("unix", addr[5:])
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        return ("tcp", (host, int(port)))
    raise ValueError(f"bad address {addr!r}")


def split(path):
    return [p for p in path.split("/") if p and p != "."]


class Py9pFS:
    """python-9p (py9p.Client)."""

    name = "python-9p"

    def __init__(self, addr, user, aname="", msize=1 << 20, timeout=120):
        import py9p
        self.py9p = py9p
        kind, where = parse_addr(addr)
        if kind == "unix":
            self.c = py9p.Client.connect_unix(where, msize=msize)
            self.c.transport.settimeout(timeout)
        else:
            self.c = py9p.Client.connect_tcp(where[0], where[1], msize=msize,
                                             timeout=timeout)
        self.c.negotiate()
        self.msize = self.c.msize
        self.user = user
        self._free = []
        self._next = 1
        self.root_qid = self._call(lambda: self.c.attach(0, uname=user, aname=aname))

    def _call(self, fn):
        try:
            return fn()
        except self.py9p.RemoteError as e:
            raise Rerror(str(e)) from None

    def newfid(self):
        if self._free:
            return self._free.pop()
        self._next += 1
        return self._next

    def walk(self, path, fid=None):
        """A new fid at path (NotFound on a partial walk)."""
        names = split(path)
        f = self.newfid() if fid is None else fid
        try:
            qids = self._call(lambda: self.c.walk(0, f, names))
        except Rerror:
            self._free.append(f)
            raise
        if len(qids) != len(names):
            self._free.append(f)
            raise NotFound(f"walk {path}: {len(qids)} of {len(names)}")
        return f

    def clunk(self, f):
        try:
            self._call(lambda: self.c.clunk(f))
        finally:
            self._free.append(f)

    def exists(self, path):
        try:
            self.clunk(self.walk(path))
            return True
        except Rerror:
            return False

    def open(self, path, mode):
        f = self.walk(path)
        try:
            _, iounit = self._call(lambda: self.c.open(f, mode))
        except Rerror:
            self.clunk(f)
            raise
        return f, iounit or self.msize - IOHDRSZ

    def create(self, path, perm, mode=ORDWR):
        parts = split(path)
        f = self.walk("/".join(parts[:-1]))
        try:
            _, iounit = self._call(lambda: self.c.create(f, parts[-1], perm, mode))
        except Rerror:
            self.clunk(f)
            raise
        return f, iounit or self.msize - IOHDRSZ

    def read(self, f, off, n):
        return self._call(lambda: self.c.read(f, n, off))

    def write(self, f, off, data):
        return self._call(lambda: self.c.write(f, data, off))

    def write_all(self, f, off, data, iounit):
        done = 0
        while done < len(data):
            n = self.write(f, off + done, data[done:done + iounit])
            check(n > 0, "write returned 0")
            done += n
        return done

    def read_all(self, f, iounit):
        out, off = [], 0
        while True:
            b = self.read(f, off, iounit)
            if not b:
                return b"".join(out)
            out.append(b)
            off += len(b)

    def mkdir(self, path, perm=0o755):
        f, _ = self.create(path, DMDIR | perm, OREAD)
        self.clunk(f)

    def put(self, path, data, perm=None):
        """Create (or truncate) path and write data (perm None: 0644)."""
        if self.exists(path):
            f, iounit = self.open(path, OWRITE | OTRUNC)
        else:
            f, iounit = self.create(path, 0o644 if perm is None else perm, OWRITE)
        try:
            self.write_all(f, 0, data, iounit)
        finally:
            self.clunk(f)

    def get(self, path):
        f, iounit = self.open(path, OREAD)
        try:
            return self.read_all(f, iounit)
        finally:
            self.clunk(f)

    def _dict(self, d):
        return {"name": d.name, "length": d.length, "mode": d.mode, "uid": d.uid,
                "gid": d.gid, "muid": d.muid, "mtime": d.mtime, "atime": d.atime,
                "qtype": d.qid.type, "qpath": d.qid.path, "qvers": d.qid.vers}

    def stat(self, path):
        f = self.walk(path)
        try:
            return self._dict(self._call(lambda: self.c.stat(f)))
        finally:
            self.clunk(f)

    def wstat_fid(self, f, **kw):
        self._call(lambda: self.c.wstat(f, encode_wstat(**kw)))

    def wstat(self, path, **kw):
        f = self.walk(path)
        try:
            self.wstat_fid(f, **kw)
        finally:
            self.clunk(f)

    def listdir(self, path):
        f, iounit = self.open(path, OREAD)
        out, off = [], 0
        try:
            while True:
                b = self.read(f, off, iounit)
                if not b:
                    return out
                off += len(b)
                while b:
                    n = struct.unpack("<H", b[:2])[0] + 2
                    out.append(self._dict(self.py9p.decode_dir(b[:n])))
                    b = b[n:]
        finally:
            self.clunk(f)

    def remove(self, path):
        f = self.walk(path)
        try:
            self._call(lambda: self.c.remove(f))
        finally:
            self._free.append(f)

    def rename(self, path, newname):
        self.wstat(path, name=newname)

    def sync(self):
        """A null wstat: answered once everything before it is durable."""
        self.wstat_fid(0)

    def close(self):
        self.c.close()


class P9fsFS:
    """p9fs: fsspec's P9FileSystem, plus its py9p.Client for what fsspec lacks."""

    name = "p9fs"

    def __init__(self, addr, user, aname="", msize=8192, timeout=120):
        import socket
        import p9fs
        from py9p import py9p as lib
        self.lib = lib
        kind, where = parse_addr(addr)

        class GefsP9FileSystem(p9fs.P9FileSystem):
            # P9FileSystem dials TCP with msize 8192; this one dials either socket
            # kind with the msize asked for. Everything else is p9fs's own.
            def _connect(self_):
                if kind == "unix":
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(where)
                else:
                    s = socket.create_connection(where)
                s.settimeout(timeout)
                cred = lib.Credentials(user=self_.username, passwd=self_.password)
                self_.client = lib.Client(s, credentials=cred, ver=self_.version,
                                          chatty=self_.verbose, aname=self_.aname,
                                          msize=msize)

        try:
            self.fs = GefsP9FileSystem("gefsd", 0, user, version="9P2000", aname=aname,
                                       skip_instance_cache=True)
        except lib.RpcError as e:
            raise Rerror(e.args[0] if e.args else "?") from None
        self.c = self.fs.client
        self.msize = self.c.msize
        self.recycled = 0
        self.user = user
        self._free = []
        self._next = 100

    def _call(self, fn):
        # p9fs 0.0.4's with_fid takes a fid number from its FidCache for every
        # fsspec call and never gives it back (after about 64,000 calls every
        # call fails with NoFidError). Those fids are clunked or were never used,
        # and this adapter keeps no fsspec file open between calls, so a fresh
        # cache is safe whenever it runs low.
        if len(self.fs.fids.fids) < 1000:
            from py9p import fid
            self.fs.fids = fid.FidCache()
            self.recycled += 1
        try:
            return fn()
        except self.lib.RpcError as e:
            raise Rerror(e.args[0] if e.args else "?") from None

    def newfid(self):
        if self._free:
            return self._free.pop()
        self._next += 1
        return self._next

    def walk(self, path, fid=None):
        names = split(path)
        f = self.newfid() if fid is None else fid
        try:
            r = self._call(lambda: self.c._walk(self.c.ROOT, f, names))
        except Rerror:
            self._free.append(f)
            raise
        if len(r.wqid) != len(names):
            self._free.append(f)
            raise NotFound(f"walk {path}: {len(r.wqid)} of {len(names)}")
        return f

    def clunk(self, f):
        try:
            self._call(lambda: self.c._clunk(f))
        finally:
            self._free.append(f)

    def exists(self, path):
        try:
            self.clunk(self.walk(path))
            return True
        except Rerror:
            return False

    def open(self, path, mode):
        f = self.walk(path)
        try:
            r = self._call(lambda: self.c._open(f, mode))
        except Rerror:
            self.clunk(f)
            raise
        return f, r.iounit or self.msize - IOHDRSZ

    def create(self, path, perm, mode=ORDWR):
        parts = split(path)
        f = self.walk("/".join(parts[:-1]))
        try:
            r = self._call(lambda: self.c._create(f, parts[-1], perm, mode))
        except Rerror:
            self.clunk(f)
            raise
        return f, r.iounit or self.msize - IOHDRSZ

    def read(self, f, off, n):
        return self._call(lambda: self.c._read(f, off, n)).data

    def write(self, f, off, data):
        return self._call(lambda: self.c._write(f, off, data)).count

    def write_all(self, f, off, data, iounit):
        done = 0
        while done < len(data):
            n = self.write(f, off + done, data[done:done + iounit])
            check(n > 0, "write returned 0")
            done += n
        return done

    def read_all(self, f, iounit):
        out, off = [], 0
        while True:
            b = self.read(f, off, iounit)
            if not b:
                return b"".join(out)
            out.append(b)
            off += len(b)

    def mkdir(self, path, perm=0o755):
        # fsspec: Tcreate with DMDIR|perm (p9fs's mode2plan).
        self._call(lambda: self.fs.mkdir(path, create_parents=False, mode=perm))

    def put(self, path, data, perm=None):
        """Create (or truncate) path and write data; perm None: fsspec's way."""
        chunk = self.msize - IOHDRSZ
        if perm is None and not self.exists(path) and len(data) % chunk != 1:
            # fsspec's buffered writer (it creates with mode 0755). It loses the last
            # byte when len % (msize-24) == 1 (p9fs 0.0.4 _upload_chunk loops
            # `while offset < size - 1`), so those sizes go the other way.
            with self.fs.open(path, "wb") as fh:
                fh.write(data)
            return
        if self.exists(path):
            f, iounit = self.open(path, OWRITE | OTRUNC)
        else:
            f, iounit = self.create(path, 0o755 if perm is None else perm, OWRITE)
        try:
            self.write_all(f, 0, data, iounit)
        finally:
            self.clunk(f)

    def get(self, path):
        # fsspec's reader (cat_file: open "rb", ranged reads through p9fs._read).
        return self._call(lambda: self.fs.cat_file(path))

    def _dict(self, d):
        name = d.name.decode() if isinstance(d.name, bytes) else d.name
        dec = lambda s: s.decode() if isinstance(s, bytes) else s
        return {"name": name, "length": d.length, "mode": d.mode, "uid": dec(d.uid),
                "gid": dec(d.gid), "muid": dec(d.muid), "mtime": d.mtime,
                "atime": d.atime, "qtype": d.qid.type & 0xFF, "qpath": d.qid.path,
                "qvers": d.qid.vers}

    def stat(self, path):
        f = self.walk(path)
        try:
            return self._dict(self._call(lambda: self.c._stat(f)).stat[0])
        finally:
            self.clunk(f)

    def info(self, path):
        """fsspec's view (Twalk + Tstat)."""
        return self._call(lambda: self.fs.info(path))

    def _nulldir(self, name="", uid="", gid="", muid="", mode=U32, mtime=U32,
                 atime=U32, length=U64):
        return self.lib.Dir(0, U16, U32, self.lib.Qid(0xFF, U32, U64), mode, atime, mtime,
                            length, name, uid, gid, muid)

    def wstat_fid(self, f, **kw):
        self._call(lambda: self.c._wstat(f, [self._nulldir(**kw)]))

    def wstat(self, path, **kw):
        f = self.walk(path)
        try:
            self.wstat_fid(f, **kw)
        finally:
            self.clunk(f)

    def listdir(self, path):
        """Topen + Tread of the directory, decoded by p9fs's Marshal9P.decstat."""
        f, iounit = self.open(path, OREAD)
        out, off = [], 0
        try:
            while True:
                b = self.read(f, off, iounit)
                if not b:
                    return out
                off += len(b)
                m = self.lib.Marshal9P(dotu=False)
                m.setBuffer(b)
                m.buf.seek(0)
                stats = []
                m.decstat(stats, 0)
                out.extend(self._dict(d) for d in stats)
        finally:
            self.clunk(f)

    def ls_names(self, path):
        """fsspec's ls: the names only."""
        items = self._call(lambda: self.fs.ls(path, detail=True))
        return [it["name"].rstrip("/").rsplit("/", 1)[-1] for it in items]

    def remove(self, path):
        st = self.stat(path)
        if st["mode"] & DMDIR:
            self._call(lambda: self.fs.rmdir(path))
        else:
            self._call(lambda: self.fs.rm(path))

    def rename(self, path, newname):
        self.wstat(path, name=newname)

    def sync(self):
        self.wstat_fid(self.c.ROOT)

    def close(self):
        try:
            self.c.fd.close()
        except Exception:
            pass


def connect(client, addr, user, aname="", msize=None, timeout=120):
    """An adapter for client ("python-9p" or "p9fs")."""
    if client == "python-9p":
        return Py9pFS(addr, user, aname, msize or (1 << 20), timeout)
    if client == "p9fs":
        return P9fsFS(addr, user, aname, msize or 65536, timeout)
    raise ValueError(client)


def client_name():
    return os.environ.get("GEFS_CLIENT", "python-9p")


def args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--user", default="alice")
    p.add_argument("--client", default=client_name())
    if extra:
        extra(p)
    return p.parse_args()


def report(**kw):
    """The result line the Rust side parses."""
    print(json.dumps(kw, sort_keys=True), flush=True)


class Timer:
    def __init__(self):
        self.t0 = time.monotonic()

    def s(self):
        return time.monotonic() - self.t0


def log(*a):
    print(*a, file=sys.stderr, flush=True)
