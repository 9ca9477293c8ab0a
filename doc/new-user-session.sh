#!/usr/bin/env bash
# A new user's first session with gefs-rs, run for real; its output is
# doc/NEW-USER-SESSION.md (regenerate: doc/new-user-session.sh > doc/NEW-USER-SESSION.md).
# Needs the release binaries (cargo build --release) and the python-9p client
# that tests/run installs under target/py (a stand-in for `mount -t 9p`, which
# needs root and a kernel with 9p).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tgt=${CARGO_TARGET_DIR:-$repo/target}
export PATH="$tgt/release:$PATH"
py="$tgt/py/venv-python-9p/bin/python"
work=$(mktemp -d /tmp/gefs-session.XXXX)
cd "$work"
trap 'kill $(cat gefsd.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# run CMD...: show the command and its output (stdout and stderr) as a shell session.
run() {
    echo "\$ $*"
    "$@" 2>&1 | sed "s|$work/||g; s|$work|.|g" || true
    echo
}
# p9 PYTHON: a few lines of Python with fs = a 9P connection to gefsd as user $me.
me=$(id -un)
p9() {
    echo "\$ python3 (9P client) <<< '$1'"
    PYTHONPATH="$repo/tests/py" "$py" - <<PY 2>&1 | sed "s|$work/||g" || true
import gefs9p
fs = gefs9p.connect("python-9p", "unix:$work/9p.sock", "$me")
$1
PY
    echo
}

echo '# A new user'"'"'s session, as it ran'
echo
echo 'Produced by `doc/new-user-session.sh` (format, serve, connect, snapshot, fill, see who'
echo 'holds the space, free it, grow, check). gefsd'"'"'s log lines are shown where they appeared.'
echo
echo '```'
run gefs-mkfs --size 64M disk.img
echo "\$ gefsd --image disk.img --listen unix!9p.sock &"
gefsd --image disk.img --listen "unix!$work/9p.sock" 2> gefsd.log &
echo $! > gefsd.pid
while [ ! -S gefs.cmd ]; do sleep 0.05; done
sed "s|$work/||g" gefsd.log; : > gefsd.seen
echo
p9 'fs.put("/report.pdf", b"%PDF quarterly figures\n" * 1000000); print("wrote /report.pdf,", len(fs.get("/report.pdf")), "bytes")'
run gefsd console snap main monday
p9 'fs.remove("/report.pdf"); print("removed /report.pdf")'
run gefsd console sync
run gefsd console df
p9 '
try:
    fs.put("/video.raw", b"\0" * (60 << 20))
except Exception as e:
    print("writing /video.raw failed:", e)'
echo "# gefsd's log says why:"
grep -v "console:" gefsd.log | sed "s|$work/||g" | grep "file system full" | head -1
echo
run gefsd console snap -l
run gefsd console snap -d monday
p9 'fs.remove("/video.raw"); print("removed /video.raw")'
run gefsd console sync
run gefsd console df
echo "# Restore a file from a snapshot: gefs-dump reads any label (the image must not be"
echo "# served, so stop gefsd first), or attach the label over 9P while it serves."
run gefsd console snap main tuesday
p9 'fs.put("/notes.txt", b"keep me\n"); print("wrote /notes.txt")'
run gefsd console snap main wednesday
p9 'fs.remove("/notes.txt"); print("removed /notes.txt")'
p9 'print(gefs9p.connect("python-9p", "unix:'"$work"'/9p.sock", "'"$me"'", "wednesday").get("/notes.txt"))'
run gefsd console halt
while kill -0 "$(cat gefsd.pid)" 2>/dev/null; do sleep 0.05; done
run gefs-dump disk.img cat wednesday /notes.txt
run gefs-mkfs --grow --size 128M disk.img
run gefs-dump disk.img df
run gefs-check disk.img
echo '```'
