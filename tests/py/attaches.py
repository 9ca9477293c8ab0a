"""The attach names: "" and main, a snapshot label, %label, dump, adm, empty.

Runs the console (`gefsd console`) itself to take a snapshot between two
versions of a file, then checks what each attach serves and that the
read-only ones refuse every change.

    attaches.py --addr unix:/path/9p.sock --user alice --gefsd BIN --console PATH
"""

import subprocess

import gefs9p as g


def console(a, *cmd):
    out = subprocess.run([a.gefsd, "console", "--socket", a.console, *cmd],
                         capture_output=True, text=True, timeout=120)
    g.check(out.returncode == 0, f"console {cmd}: {out.stdout}{out.stderr}")
    return out.stdout


def refuses_changes(fs, path, what):
    """Every change through fs to path (a file) and its directory is refused."""
    g.expect_rerror(lambda: fs.open(path, g.OWRITE), f"{what}: open for writing")
    g.expect_rerror(lambda: fs.open(path, g.OREAD | g.OTRUNC), f"{what}: OTRUNC")
    g.expect_rerror(lambda: fs.wstat(path, mode=0o777), f"{what}: wstat mode")
    g.expect_rerror(lambda: fs.wstat(path, length=0), f"{what}: wstat length")
    g.expect_rerror(lambda: fs.rename(path, "renamed"), f"{what}: rename")
    g.expect_rerror(lambda: fs.remove(path), f"{what}: remove")
    parent = "/".join(g.split(path)[:-1])
    g.expect_rerror(lambda: fs.create(f"{parent}/new", 0o644), f"{what}: create")
    g.check(fs.exists(path), f"{what}: the file is still there")
    return 8


def main():
    a = g.args(lambda p: (p.add_argument("--gefsd", required=True),
                          p.add_argument("--console", required=True)))
    n = 0
    main_fs = g.connect(a.client, a.addr, a.user, "")
    main_fs.put("snapfile", b"version 1")
    main_fs.mkdir("snapdir")
    main_fs.put("snapdir/inner", b"inner 1")
    console(a, "snap", "main", "s1")
    main_fs.put("snapfile", b"version 2, longer")
    main_fs.remove("snapdir/inner")
    main_fs.sync()

    # "main" is the same tree as "".
    named = g.connect(a.client, a.addr, a.user, "main")
    g.check(named.get("snapfile") == b"version 2, longer", "main attach")
    g.check(named.stat("")["qpath"] == main_fs.stat("")["qpath"], "main and '' differ")
    named.close()
    n += 2

    # A snapshot label: the tree as it was, read-only.
    s1 = g.connect(a.client, a.addr, a.user, "s1")
    g.check(s1.get("snapfile") == b"version 1", "snapshot contents")
    g.check(s1.get("snapdir/inner") == b"inner 1", "snapshot keeps a removed file")
    n += 2 + refuses_changes(s1, "snapfile", "snapshot s1")
    s1.close()

    # dump: every label as a read-only directory.
    dump = g.connect(a.client, a.addr, a.user, "dump")
    names = {e["name"] for e in dump.listdir("")}
    g.check({"main", "adm", "empty", "s1"} <= names, f"dump lists {names}")
    g.check(all(e["mode"] & g.DMDIR for e in dump.listdir("")), "dump entries are dirs")
    g.check(dump.get("s1/snapfile") == b"version 1", "dump/s1/snapfile")
    g.check(dump.get("s1/snapdir/inner") == b"inner 1", "dump/s1/snapdir/inner")
    g.check(dump.get("main/snapfile") == b"version 2, longer", "dump/main/snapfile")
    g.expect_rerror(lambda: dump.mkdir("newlabel"), "dump: mkdir at its root")
    g.expect_rerror(lambda: dump.remove("s1"), "dump: remove a label")
    n += 7 + refuses_changes(dump, "s1/snapfile", "dump/s1")
    n += refuses_changes(dump, "main/snapfile", "dump/main")
    dump.close()

    # %main: permission checks off for an adm member (alice is the first one).
    main_fs.put("locked", b"secret", perm=0o000)
    g.expect_rerror(lambda: main_fs.get("locked"), "mode 000: read as the owner")
    pct = g.connect(a.client, a.addr, a.user, "%main")
    g.check(pct.get("locked") == b"secret", "%main reads a mode-000 file")
    pct.put("locked", b"changed", perm=0o000)
    pct.wstat("locked", uid="adm")
    g.check(pct.stat("locked")["uid"] == "adm", "%main may chown")
    g.expect_rerror(lambda: main_fs.wstat("snapfile", uid="adm"),
                    "chown without % (stat(5): nobody may change the owner)")
    pct.close()
    n += 5

    # adm: the users file.
    adm = g.connect(a.client, a.addr, a.user, "adm")
    g.check([e["name"] for e in adm.listdir("")] == ["users"], "adm holds users")
    users = adm.get("users").decode()
    lines = [l.split(":") for l in users.splitlines() if l and not l.startswith("#")]
    admline = [l for l in lines if l[1] == "adm"]
    g.check(admline and a.user in admline[0][3].split(","), f"adm members: {users!r}")
    g.check(any(l[1] == a.user for l in lines), f"{a.user} in users: {users!r}")
    adm.close()
    n += 3

    # empty: an immutable empty tree.
    empty = g.connect(a.client, a.addr, a.user, "empty")
    g.check(empty.listdir("") == [], "empty is empty")
    g.expect_rerror(lambda: empty.create("x", 0o644), "create in empty")
    empty.close()
    n += 2

    # Attaches that must fail.
    for aname, user, why in [("nosuchlabel", a.user, "unknown label"),
                             ("", "mallory", "unknown user"),
                             ("%nosuchlabel", a.user, "unknown % label")]:
        try:
            g.connect(a.client, a.addr, user, aname).close()
            raise g.Fail(f"attach {aname!r} as {user}: {why} accepted")
        except g.Rerror:
            n += 1

    # Deleting the label: gone from dump, and its attach fails.
    console(a, "snap", "-d", "s1")
    dump = g.connect(a.client, a.addr, a.user, "dump")
    g.check("s1" not in {e["name"] for e in dump.listdir("")}, "deleted label in dump")
    dump.close()
    try:
        g.connect(a.client, a.addr, a.user, "s1").close()
        raise g.Fail("attach to a deleted label")
    except g.Rerror:
        pass
    n += 2
    main_fs.close()
    g.report(client=a.client, checks=n)


if __name__ == "__main__":
    main()
