# The guest's /guest.sh for pjdfstest (tests/vm/PJDFSTEST.md): mount gefsd (port gefs0) with
# 9P2000.L, or with gefs.tmpfs=1 a tmpfs for the GEFS-policy reference run; run prove over
# every test directory (or those of gefs.only=a,b), printing only what failed and the summary
# (the console is a slow serial line).
opts=
for w in $(cat /proc/cmdline); do case $w in gefs.mountopts=*) opts=,${w#*=};; gefs.only=*) only=${w#*=};; gefs.tmpfs=*) tmpfs=1;; esac; done
dev=
for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name)" = gefs0 ] && dev=/dev/${d##*/}; done
mkdir -p /mnt/p
base=/pjd
if [ -n "${tmpfs:-}" ]; then
    # The reference: Linux tmpfs with pjdfstest's GEFS-policy build (no device nodes, no hard
    # links, directories' nlink 1), to tell the design-choice failures from the rest.
    mount -t tmpfs tmpfs /mnt/p || exit 1; base=/pjdp
else
    gefsvm mount $dev /mnt/p "version=9p2000.L,uname=root,access=user,msize=262144$opts" || { echo "mount failed"; exit 1; }
fi
mkdir -p /mnt/p/t/pjd && cd /mnt/p/t/pjd
export PATH=/bin:/usr/bin
printf "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n" > /etc/passwd
printf "root:x:0:\nnogroup:x:65534:\n" > /etc/group
t0=$(cut -d' ' -f1 /proc/uptime)
dirs=$(for d in $(echo ${only:-} | tr , " "); do echo $base/tests/$d; done)
prove -rv ${dirs:-$base/tests} 2>&1 | awk '/^\/pjdp?\/tests\/.*\.t \.\./ {f=$1} /^not ok/ {print "NOTOK " f " " substr($0, 1, 240)} /^(Files=|Tests=|Result:|Failed|All tests)/ {print "SUM " $0} /Parse errors|Wstat|Dubious/ {print "SUM " f " " $0}'
echo "pjdfstest took $(echo "$(cut -d' ' -f1 /proc/uptime) $t0" | awk '{print $1-$2}') s"
cd /; umount /mnt/p
