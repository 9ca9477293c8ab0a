"""Two users' (three's) permissions, table-driven, through python-9p.

Phase "setup" (as the administrator, through the adm attach): adds users to
adm's /users; bob must not be able to attach yet. The caller then reloads the
table with the console (`gefsd console users`). Phase "run" builds the
objects, tries every operation as every user, and compares each answer with
the one computed here from Plan 9's rules, written out below from intro(5),
open(5), remove(5), stat(5) and users(6) -- not from the implementation:

- a user may access a file for `want` (r=4, w=2, x=1) if it owns the file and
  the owner bits grant it, or is a member of the file's group and the group
  bits grant it, or the other bits grant it (either suffices);
- a group's members are the user of the same name and those listed; its
  leader is the one named, or, when none is named, every member;
- open needs r for OREAD, w for OWRITE, r+w for ORDWR, and w for OTRUNC;
- walking a name in a directory needs x on it; reading it (ls) needs r;
- create needs w on the directory; remove needs w on the parent;
- wstat: the name needs w on the parent; the length needs w on the file;
  mode and mtime the owner or the leader of the file's group; the group the
  owner if a member of the new group, or the leader of both the old and the
  new group; the owner nobody (only a permission-free attach);
- a new file's group is its directory's, its mode perm & (~0666 | dir & 0666)
  (0777 for directories), its owner the creator;
- %main attaches (no permission checks) are for adm members, or everyone
  after `permit on`.
"""

import subprocess
import sys

import gefs9p as g

NEW_USERS = """\
2:bob:bob:
3:carol:carol:
100:staff:alice:alice,bob
101:eng:alice:carol
"""

# The table after setup (the image's administrator is alice).
GROUPS = {
    "adm": (None, {"alice"}),
    "alice": ("alice", set()),
    "bob": ("bob", set()),
    "carol": ("carol", set()),
    "staff": ("alice", {"alice", "bob"}),
    "eng": ("alice", {"carol"}),
}
USERS = ["bob", "alice", "carol"]  # the files' owner, a group member and leader, other
OWNER, GROUP = "bob", "staff"
R, W, X = 4, 2, 1


def member(u, grp):
    return u == grp or u in GROUPS[grp][1]


def leader(u, grp):
    lead, _ = GROUPS[grp]
    return lead == u if lead else member(u, grp)


def may(u, owner, gid, mode, want):
    if u == owner and (mode >> 6) & want == want:
        return True
    if member(u, gid) and (mode >> 3) & want == want:
        return True
    return mode & want == want


FILE_MODES = [0o000, 0o600, 0o640, 0o660, 0o604, 0o606, 0o644, 0o666, 0o400, 0o200,
              0o060, 0o006, 0o620, 0o462]
DIR_MODES = [0o700, 0o750, 0o770, 0o755, 0o777, 0o711, 0o702, 0o703, 0o705, 0o706,
             0o720, 0o730, 0o070, 0o007]


def file_expect(u, mode, op):
    m = lambda want: may(u, OWNER, GROUP, mode, want)
    return {
        "read": m(R),
        "write": m(W),
        "rdwr": m(R | W),
        "otrunc": m(W),
        "wlength": m(W),
        "mtime": u == OWNER or leader(u, GROUP),
        "chmod": u == OWNER or leader(u, GROUP),
        "chown": False,
    }[op]


def dir_expect(u, mode, op):
    m = lambda want: may(u, OWNER, GROUP, mode, want)
    return {
        "ls": m(R),
        "walk": m(X),
        "create": m(W),
        "remove": m(X) and m(W),
        "rename": m(X) and m(W),
    }[op]


def chgrp_expect(u, new):
    return (u == OWNER and member(u, new)) or (leader(u, GROUP) and leader(u, new))


def attempt(fn):
    try:
        fn()
        return True
    except g.Rerror:
        return False


def console(a, *cmd):
    out = subprocess.run([a.gefsd, "console", "--socket", a.console, *cmd],
                         capture_output=True, text=True, timeout=60)
    g.check(out.returncode == 0, f"console {cmd}: {out.stdout}{out.stderr}")
    return out.stdout


def setup(a):
    adm = g.Py9pFS(a.addr, "alice", "adm")
    users = adm.get("users").decode()
    adm.put("users", (users + NEW_USERS).encode())
    g.check(adm.get("users").decode().endswith(NEW_USERS), "users file written")
    adm.close()
    try:
        g.Py9pFS(a.addr, "bob").close()
        raise g.Fail("bob attached before the users table was reloaded")
    except g.Rerror:
        pass
    g.report(phase="setup")


def run(a):
    fs = {u: g.Py9pFS(a.addr, u) for u in USERS}
    rows = []  # (what, user, expected, got)

    def row(what, u, expected, fn):
        rows.append((what, u, expected, attempt(fn)))

    alice, bob = fs["alice"], fs["bob"]
    alice.mkdir("m", 0o777)
    alice.wstat("m", mode=g.DMDIR | 0o777)
    row("chgrp m staff (owner, member of staff)", "alice", True,
        lambda: alice.wstat("m", gid="staff"))
    st = alice.stat("m")
    g.check(st["gid"] == "staff" and st["mode"] == g.DMDIR | 0o777, f"/m: {st}")

    # New files: owner, inherited group, mode masked by the directory's.
    alice.mkdir("mask", 0o755)
    alice.wstat("mask", mode=g.DMDIR | 0o750)
    for perm in (0o666, 0o777, 0o640, 0o604):
        f, _ = alice.create(f"mask/f{perm:03o}", perm)
        alice.clunk(f)
        got = alice.stat(f"mask/f{perm:03o}")["mode"]
        want = perm & (~0o666 | (0o750 & 0o666))
        rows.append((f"create perm {perm:03o} in a 750 dir: mode {want:03o}", "alice",
                     True, got == want))
    alice.mkdir("mask/sub", 0o777)
    want = g.DMDIR | (0o777 & (~0o777 | 0o750))
    rows.append(("mkdir 777 in a 750 dir: mode 750", "alice", True,
                 alice.stat("mask/sub")["mode"] == want))

    # Bob's files and directories in /m (group staff), one per user and mode.
    for mode in FILE_MODES:
        for u in USERS:
            p = f"m/f{mode:03o}-{u}"
            bob.put(p, b"data", perm=0o666)
            st = bob.stat(p)
            g.check(st["uid"] == OWNER and st["gid"] == GROUP, f"{p}: {st}")
            bob.wstat(p, mode=mode)
    for mode in DIR_MODES:
        for u in USERS:
            d = f"m/d{mode:03o}-{u}"
            bob.mkdir(d, 0o777)
            bob.put(f"{d}/victim", b"v", perm=0o666)
            bob.put(f"{d}/mover", b"m", perm=0o666)
            bob.wstat(d, mode=g.DMDIR | mode)
    for u in USERS:
        for new in ("bob", "eng", "carol"):
            bob.put(f"m/g-{u}-{new}", b"g", perm=0o644)

    for mode in FILE_MODES:
        for u in USERS:
            c, p = fs[u], f"m/f{mode:03o}-{u}"

            def op_open(omode):
                f, _ = c.open(p, omode)
                c.clunk(f)

            for op, fn in [
                ("read", lambda: op_open(g.OREAD)),
                ("write", lambda: op_open(g.OWRITE)),
                ("rdwr", lambda: op_open(g.ORDWR)),
                ("otrunc", lambda: op_open(g.OWRITE | g.OTRUNC)),
                ("wlength", lambda: c.wstat(p, length=0)),
                ("mtime", lambda: c.wstat(p, mtime=1000000 + mode)),
                ("chown", lambda: c.wstat(p, uid="carol")),
                ("chmod", lambda: c.wstat(p, mode=mode ^ 0o001)),
            ]:
                row(f"file {mode:03o} {op}", u, file_expect(u, mode, op), fn)

    for mode in DIR_MODES:
        for u in USERS:
            c, d = fs[u], f"m/d{mode:03o}-{u}"

            def ls():
                f, iounit = c.open(d, g.OREAD)
                try:
                    c.read(f, 0, iounit)
                finally:
                    c.clunk(f)

            def create():
                f, _ = c.create(f"{d}/new", 0o644)
                c.clunk(f)

            for op, fn in [
                ("ls", ls),
                ("walk", lambda: c.stat(f"{d}/victim")),
                ("create", create),
                ("remove", lambda: c.remove(f"{d}/victim")),
                ("rename", lambda: c.rename(f"{d}/mover", "moved")),
            ]:
                row(f"dir {mode:03o} {op}", u, dir_expect(u, mode, op), fn)

    for u in USERS:
        for new in ("bob", "eng", "carol"):
            p = f"m/g-{u}-{new}"
            row(f"chgrp staff->{new}", u, chgrp_expect(u, new),
                lambda: fs[u].wstat(p, gid=new))

    # Permission-free attaches: adm members only, everyone with `permit on`.
    def pct(u):
        g.Py9pFS(a.addr, u, "%main").close()

    for u in USERS:
        row("attach %main", u, member(u, "adm"), lambda: pct(u))
    console(a, "permit", "on")
    for u in USERS:
        row("attach %main, permit on", u, True, lambda: pct(u))
    console(a, "permit", "off")
    for u in USERS:
        row("attach %main, permit off again", u, member(u, "adm"), lambda: pct(u))

    # The results, as a table: one line per check, expected and answered.
    bad = [r for r in rows if r[2] != r[3]]
    yn = lambda b: "allow" if b else "deny"
    for what, u, exp, got in rows:
        mark = "" if exp == got else "   <-- MISMATCH"
        g.log(f"{what:48} {u:6} expect {yn(exp):5} got {yn(got):5}{mark}")
    for c in fs.values():
        c.close()
    g.report(phase="run", checks=len(rows), mismatches=len(bad),
             allowed=sum(1 for r in rows if r[3]), denied=sum(1 for r in rows if not r[3]),
             bad=[f"{w} as {u}: expected {yn(e)}, got {yn(x)}" for w, u, e, x in bad])
    if bad:
        sys.exit(1)


def main():
    a = g.args(lambda p: (p.add_argument("phase", choices=["setup", "run"]),
                          p.add_argument("--gefsd"), p.add_argument("--console")))
    setup(a) if a.phase == "setup" else run(a)


if __name__ == "__main__":
    main()
