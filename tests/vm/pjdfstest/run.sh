#!/usr/bin/env bash
# run.sh OVERLAY OUT [ONLY] [KERNEL-ARGS]: format a fresh image, serve it with
# target/release/gefsd, load the users table below, boot the test guest (tests/vm/setup) with
# OVERLAY (from overlay.sh) appended, and write the guest's transcript, gefs-check's verdict
# and gefsd's last lines to OUT. ONLY: test directories, comma-separated (chmod,rename).
# KERNEL-ARGS: gefs.tmpfs=1 runs the GEFS-policy reference on tmpfs instead.
# Binaries from $BIN (default target/release), the guest from $VMDIR (default target/vm).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 OVERLAY OUT [ONLY] [KERNEL-ARGS]" >&2; exit 2; }
ov=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); out=$2; only=${3:-}; extra=${4:-}
bin=${BIN:-$root/target/release}; vm=${VMDIR:-$root/target/vm}
# pjdfstest's users and groups. gefsd learns a request's uid (the attach's n_uname) and
# nothing of the caller's groups, so membership comes from this table: u65534 and u65533 are
# members of the groups pjdfstest gives them with -g (65531-65534), and the kernel, which
# knows the caller's real groups, checks them first. 123 and 456 are chown/00.t's ids.
users='-1:adm::alice,root\n0:root:root:\n1:alice:alice:\n2:none::\n123:u123:u123:\n456:g456::\n1000:bob:bob:\n65531:u65531:u65531:u65533,u65534\n65532:u65532:u65532:u65533,u65534\n65533:u65533:u65533:u65534\n65534:u65534:u65534:u65533\n'
[ -n "${PLAIN_GROUPS:-}" ] && users='-1:adm::alice,root\n0:root:root:\n1:alice:alice:\n2:none::\n1000:bob:bob:\n65531:u65531:u65531:\n65532:u65532:u65532:\n65533:u65533:u65533:\n65534:u65534:u65534:\n'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
img=$tmp/g.img; sock=$tmp/9p.sock
"$bin/gefs-mkfs" -f -s 4G -u alice "$img" >/dev/null || exit 1
"$bin/gefsd" -f "$img" -a "unix!$sock" -A 2>"$tmp/gefsd.log" &
gp=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
python3 "$here/setup9p.py" "$sock" alice "$users" || { kill $gp; exit 1; }
"$bin/gefsd" console --socket "$tmp/gefs.cmd" users || { kill $gp; exit 1; }
cat "$vm/initrd.cpio" "$ov" >"$tmp/initrd.cpio"
args="console=ttyS0 loglevel=4 panic=-1 $extra"
[ -n "$only" ] && args="$args gefs.only=$only"
bios=(); [ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
timeout 3600 qemu-system-x86_64 -accel tcg -m 1024 -nographic -nodefaults -no-reboot \
    -serial stdio "${bios[@]}" -kernel "$vm/vmlinux" \
    -initrd "$tmp/initrd.cpio" -append "$args" \
    -device virtio-serial-pci,id=vs -chardev "socket,id=c0,path=$sock" \
    -device virtserialport,bus=vs.0,chardev=c0,name=gefs0 >"$out" 2>&1
kill $gp; wait $gp
"$bin/gefs-check" "$img" >>"$out" 2>&1; echo "gefs-check exit $?" >>"$out"
tail -n 3 "$tmp/gefsd.log" >>"$out"
