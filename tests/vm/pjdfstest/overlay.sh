#!/usr/bin/env bash
# overlay.sh PJD OUT: build pjdfstest from the clone PJD of github pjd/pjdfstest twice,
# statically (as it is, and with gefs-policy.patch), and pack OUT/overlay.cpio: both builds
# with their tests (/pjd, /pjdp), perl and prove with what they load, and guest.sh as the
# guest's /guest.sh. The kernel unpacks archives appended to the initramfs in order, so
# `cat VMDIR/initrd.cpio OUT/overlay.cpio` is the test guest with pjdfstest added.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 PJD OUT" >&2; exit 2; }
pjd=$(cd "$1" && pwd); mkdir -p "$2"; out=$(cd "$2" && pwd)
if [ ! -x "$pjd/pjdfstest" ]; then
    (cd "$pjd" && autoreconf -ifs && ./configure LDFLAGS=-static && make pjdfstest)
fi
patch -s -o "$out/policy.c" "$pjd/pjdfstest.c" "$here/gefs-policy.patch"
gcc -O2 -static -I"$pjd" -DHAVE_CONFIG_H -o "$out/pjdfstest-policy" "$out/policy.c"
o=$out/ov
rm -rf "$o" && mkdir -p "$o/pjd" "$o/pjdp" "$o/usr/bin" "$o/bin"
cp "$pjd/pjdfstest" "$o/pjd/" && cp -a "$pjd/tests" "$o/pjd/tests"
cp "$out/pjdfstest-policy" "$o/pjdp/pjdfstest" && cp -a "$pjd/tests" "$o/pjdp/tests"
cp /usr/bin/perl /usr/bin/prove "$o/usr/bin/"
for l in $(ldd /usr/bin/perl | grep -o '/[^ ]*'); do mkdir -p "$o$(dirname "$l")"; cp -L "$l" "$o$l"; done
pv=$(perl -e 'printf "%vd", $^V')
for d in /usr/lib/x86_64-linux-gnu/perl-base "/usr/share/perl/$pv" \
    "/usr/lib/x86_64-linux-gnu/perl/$pv" /usr/share/perl5; do
    mkdir -p "$o$(dirname "$d")" && cp -a "$d" "$o$d"
done
ln -s "$pv" "$o/usr/share/perl/${pv%.*}"
ln -s "$pv" "$o/usr/lib/x86_64-linux-gnu/perl/${pv%.*}"
# pjdfstest names its files with `openssl md5`.
printf '#!/bin/sh\nmd5sum | cut -d" " -f1\n' >"$o/bin/openssl" && chmod +x "$o/bin/openssl"
cp "$here/guest.sh" "$o/guest.sh"
(cd "$o" && find . | cpio -o -H newc -R 0:0 --quiet) >"$out/overlay.cpio"
echo "$out/overlay.cpio"
