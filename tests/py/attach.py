"""Try one attach; print {"ok": true, "qtype": ...} or {"ok": false, "error": ...}.

    attach.py --addr tcp:127.0.0.1:PORT --user bob --aname %main
"""

import gefs9p as g


def main():
    a = g.args(lambda p: p.add_argument("--aname", default=""))
    try:
        fs = g.connect(a.client, a.addr, a.user, a.aname)
    except g.Rerror as e:
        g.report(ok=False, error=e.ename)
        return
    st = fs.stat("")
    fs.close()
    g.report(ok=True, qtype=st["qtype"], uid=st["uid"])


if __name__ == "__main__":
    main()
