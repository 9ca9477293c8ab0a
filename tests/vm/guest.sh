# The tests the Linux guest runs on gefsd through the kernel's v9fs (tests/vm/README.md).
# Run by /init under busybox sh. Parameters come on the kernel command line:
#   gefs.dialect=9p2000|9p2000.L   the 9P dialect to mount with
#   gefs.fsxops=N                  fsx operations per dialect (9P2000.L splits them between
#                                  its loose and its mmap mount)
#   gefs.mountopts=OPTS            more mount options (for trying things by hand)
#   gefs.creates=N                 instead of the tests, the creates measurement
#                                  (tests/tests/perf_creates.rs): N small files created
#                                  through gefs0 (gefsd) and through gefs1 (diod, exporting
#                                  the directory gefs.diod=PATH), twice each, alternating;
#                                  one line "creates SERVER ROUND N SECONDS" per run
# Each virtio-serial port gefs0, gefs1, ... reaches gefsd once: every mount takes the next.
# Output, one line each: "ok WHAT", "FAIL WHAT: DETAIL", "verified: ..." (a summary the host
# prints) and "time SECTION SECONDS"; the exit status is the number of failures (at most 100).

dialect=9p2000
fsxops=5000
for w in $(cat /proc/cmdline); do
    case $w in
    gefs.dialect=*) dialect=${w#*=} ;;
    gefs.fsxops=*) fsxops=${w#*=} ;;
    gefs.mountopts=*) mountopts=,${w#*=} ;;
    gefs.creates=*) creates=${w#*=} ;;
    gefs.diod=*) diod=${w#*=} ;;
    esac
done
pass=0
fail=0
# Each result names the mount it was taken on ($at) when there is one.
at=
ok() { pass=$((pass + 1)); echo "ok ${at:+$at: }$*"; }
bad() { fail=$((fail + 1)); echo "FAIL ${at:+$at: }$*"; }
# expect WHAT WANT GOT
expect() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi
}
# run WHAT COMMAND...: the command must succeed.
run() {
    what=$1
    shift
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what: $* failed: $(echo "$out" | tail -n 3)"; fi
}
now() { cut -d' ' -f1 /proc/uptime; }
t_start=$(now)
section() { # NAME: end the previous section's timing and start this one's
    t=$(now)
    [ -n "${sect:-}" ] && echo "time $sect $(echo "$t $t_sect" | awk '{printf "%.1f", $1 - $2}')"
    sect=$1
    t_sect=$t
}

# mnt DIR OPTIONS: mount gefsd through the next virtio-serial port.
port_n=0
mnt() {
    dev=
    for d in /sys/class/virtio-ports/*; do
        [ "$(cat "$d/name")" = "gefs$port_n" ] && dev=/dev/${d##*/}
    done
    port_n=$((port_n + 1))
    mkdir -p "$1"
    if [ -z "$dev" ]; then
        bad "mount $1: no virtio port gefs$((port_n - 1))"
        return 1
    fi
    if gefsvm mount "$dev" "$1" "$2"; then
        ok "mount $1 ($2)"
    else
        bad "mount $1 ($2)"
        return 1
    fi
}

# What the dialect lets Linux do that 9P2000 cannot.
if [ "$dialect" = 9p2000.L ]; then
    dotl=1
    base="version=9p2000.L,uname=root,access=user,msize=262144${mountopts:-}"
else
    dotl=
    base="version=9p2000,uname=root,msize=262144${mountopts:-}"
fi

# fileops DIR: the file operations, in a fresh directory DIR.
fileops() {
    d=$1
    mkdir -p "$d" || { bad "mkdir $d"; return; }
    cd "$d" || return
    at=$d
    printf 'hello\n' >f
    expect "create+write+read" "hello" "$(cat f)"
    printf 'world\n' >>f
    expect "append" "hello world" "$(cat f | tr '\n' ' ' | sed 's/ $//')"
    truncate -s 100000 f
    expect "truncate up: size" 100000 "$(stat -c %s f)"
    expect "truncate up: old bytes kept" "hello" "$(head -n1 f)"
    expect "truncate up: new bytes are zeros" 0 "$(tail -c +13 f | tr -d '\000' | wc -c)"
    truncate -s 5 f
    expect "truncate down" "hello" "$(cat f)"
    truncate -s 8 f
    expect "truncate down then up: zeros after the cut" "68656c6c6f000000" "$(od -An -tx1 f | tr -d ' \n')"
    chmod 640 f
    expect "chmod" 640 "$(stat -c %a f)"
    chmod 604 f
    expect "chmod again" 604 "$(stat -c %a f)"
    touch -d '2001-02-03 04:05:06' f
    expect "touch -d" 981173106 "$(stat -c %Y f)"

    printf 'one\n' >a
    mv a b
    expect "mv within a directory" "absent one" "$([ -e a ] && echo present || echo absent) $(cat b)"
    mkdir -p d1/sub d2
    printf 'two\n' >d1/x
    printf 'three\n' >d1/sub/y
    mv d1/x d2/x
    expect "mv a file across directories" "absent two" "$([ -e d1/x ] && echo present || echo absent) $(cat d2/x)"
    mv d1/sub d2/sub
    expect "mv a directory across directories" "absent three" "$([ -e d1/sub ] && echo present || echo absent) $(cat d2/sub/y)"
    # rename(2) itself: 9P2000 renames by wstat, which names no directory, so v9fs refuses
    # a move across directories with EXDEV (mv then copies); 9P2000.L has Trenameat.
    printf 'four\n' >d1/z
    if [ -n "$dotl" ]; then
        expect "rename(2) across directories" "ok four" "$(gefsvm rename d1/z d2/z) $(cat d2/z)"
    else
        expect "rename(2) across directories: EXDEV" "EXDEV four" "$(gefsvm rename d1/z d2/z) $(cat d1/z)"
    fi
    printf 'new\n' >src
    printf 'old\n' >dst
    if [ -n "$dotl" ]; then
        expect "rename over an existing file" "ok absent new" \
            "$(gefsvm rename src dst) $([ -e src ] && echo present || echo absent) $(cat dst)"
    else
        # 9P2000 keeps Plan 9's rule: a wstat may not rename onto an existing name.
        expect "rename over an existing file: refused, both kept" "EEXIST new old" \
            "$(gefsvm rename src dst) $(cat src) $(cat dst)"
        rm -f dst
        mv src dst
        expect "rename once the target is removed" "new" "$(cat dst)"
    fi

    mkdir -p tree/a/b/c tree/e
    for i in 1 2 3 4 5 6 7 8 9 10; do
        printf '%s\n' "$i" >tree/a/f$i
        printf '%s\n' "$i" >tree/a/b/c/g$i
    done
    rm -r tree
    expect "rm -r" "absent" "$([ -e tree ] && echo present || echo absent)"
    expect "O_EXCL creates" ok "$(gefsvm excl x)"
    expect "O_EXCL on an existing file: EEXIST" EEXIST "$(gefsvm excl x)"

    mkdir many
    i=0
    while [ $i -lt 200 ]; do
        printf '' >many/e$i
        i=$((i + 1))
    done
    expect "readdir of 200 entries" 200 "$(ls many | wc -l)"
    expect "readdir names" "$(seq 0 199 | sed 's/^/e/' | sort | md5sum)" "$(ls many | sort | md5sum)"
    rm -r many
    expect "unlink of 200 entries" "absent" "$([ -e many ] && echo present || echo absent)"
    cd /
    at=
}

# agree DIR1 DIR2: two mounts of the same tree see each other's changes.
agree() {
    mkdir -p "$1/agree"
    printf 'from one\n' >"$1/agree/f1"
    expect "second mount reads the first's new file" "from one" "$(cat "$2/agree/f1")"
    printf 'from two\n' >"$2/agree/f2"
    expect "first mount reads the second's new file" "from two" "$(cat "$1/agree/f2")"
    expect "both mounts list the same directory" "$(ls "$1/agree" | tr '\n' ' ')" "$(ls "$2/agree" | tr '\n' ' ')"
    rm "$2/agree/f1"
    expect "a removal on the second shows on the first" "absent" "$([ -e "$1/agree/f1" ] && echo present || echo absent)"
}

# fsxrun DIR CONFIG SEED N: N fsx operations on one file, every read checked.
fsx_ops=0
fsxrun() {
    if out=$(fsx -N "$4" -S "$3" -f "$2" -P /tmp "$1/fsx.bin" 2>&1) &&
        echo "$out" | grep -q 'All operations completed A-OK'; then
        ok "fsx $4 operations on $1 ($2, seed $3)"
        fsx_ops=$((fsx_ops + $4))
    else
        bad "fsx on $1 ($2, seed $3): $(echo "$out" | tail -n 15)"
    fi
}

# tree DIR CHECKDIR: copy /data/tree in through DIR; compare through CHECKDIR (another
# mount, which has cached nothing of it) and, for 9P2000.L, whose DIR caches pages, through
# DIR too.
tree_files=0
tree() {
    cp -a /data/tree "$1/tree" || bad "cp -a /data/tree $1/tree"
    [ -n "$dotl" ] && run "diff -r of the tree copied in" diff -r /data/tree "$1/tree"
    sync
    run "diff -r of the tree through another mount" diff -r /data/tree "$2/tree"
    expect "modes and mtimes of the tree (cp -a) through another mount" \
        "$(cd /data/tree && find . | sort | xargs stat -c '%n %a %Y' | md5sum)" \
        "$(cd "$2/tree" && find . | sort | xargs stat -c '%n %a %Y' | md5sum)"
    tree_files=$(find /data/tree -type f | wc -l)
}

# gitrepo DIR CHECKDIR: the tree copied in by `tree` made a git repository in DIR, then
# checked through CHECKDIR.
gitrepo() {
    g="git -c user.name=gefs -c user.email=gefs@localhost -c init.defaultBranch=main"
    cd "$1/tree" || return
    run "git init" $g init -q --template=
    run "git add" $g add -A
    run "git commit" $g commit -q -m one
    echo "// changed" >>"$(find . -name '*.rs' | head -n1)"
    run "git commit -a" $g commit -q -a -m two
    section git-gc
    run "git gc" $g gc -q
    sync
    section git-check
    cd "$2/tree" || return
    run "git fsck --full --strict (other mount)" $g fsck --full --strict --no-progress
    expect "git log (other mount)" 2 "$($g log --oneline | wc -l)"
    expect "git status clean (other mount)" "" "$($g status --porcelain)"
    cd /
}

# dotl_ops DIR CHECKDIR: what 9P2000.L carries and 9P2000 does not, made through DIR and
# read back through CHECKDIR (which has cached nothing of it).
dotl_ops() {
    mkdir -p "$1/dotl/dir"
    printf 'target\n' >"$1/dotl/file"
    expect "symlink" ok "$(gefsvm symlink file "$1/dotl/link")"
    expect "symlink to a directory" ok "$(gefsvm symlink dir "$1/dotl/dlink")"
    expect "dangling symlink" ok "$(gefsvm symlink nowhere/at/all "$1/dotl/dangling")"
    sync
    expect "readlink" file "$(gefsvm readlink "$2/dotl/link")"
    expect "readlink (dangling)" nowhere/at/all "$(gefsvm readlink "$2/dotl/dangling")"
    expect "lstat of a symlink: mode" 120777 "$(gefsvm stat "$2/dotl/link" | cut -d' ' -f1)"
    expect "read through a symlink" target "$(cat "$2/dotl/link")"
    printf '' >"$1/dotl/dir/inside"
    expect "walk through a symlink to a directory" inside "$(ls "$2/dotl/dlink/")"
    expect "rm of a symlink leaves its target" "absent target" \
        "$(rm "$1/dotl/link" && ([ -L "$2/dotl/link" ] && echo present || echo absent)) $(cat "$2/dotl/file")"

    # Times with nanoseconds, read back through another mount. Linux 6.1's v9fs leaves its
    # superblock's time granularity at one second, so the kernel cuts utimensat's
    # nanoseconds before they leave the guest (its Tsetattr carries 0; that gefsd keeps what
    # it is sent is gefsd/tests/dotl_linux.rs's to check). The times gefsd sets itself, such
    # as a write's mtime, reach the guest with theirs.
    expect "utimensat with nanoseconds" ok "$(gefsvm utimens "$1/dotl/file" 1234567890 123456789)"
    for f in 7:mtime 6:atime; do
        t=$(gefsvm stat "$2/dotl/file" | cut -d' ' -f"${f%:*}")
        case $t in
        1234567890.123456789 | 1234567890.000000000) ok "utimensat's ${f#*:} read back: $t" ;;
        *) bad "utimensat's ${f#*:} read back: expected 1234567890.123456789 or .000000000, got '$t'" ;;
        esac
    done
    printf 'now\n' >"$2/dotl/fresh"
    t=$(gefsvm stat "$2/dotl/fresh" | cut -d' ' -f7)
    if [ "${t#*.}" != 000000000 ] && [ "${#t}" -gt 10 ]; then
        ok "a write's mtime has nanoseconds: $t"
    else
        bad "a write's mtime has no nanoseconds: '$t'"
    fi

    # Owners: numeric ids, as the mounting root sees them.
    expect "owner of a new file is root" "0 0" "$(gefsvm stat "$2/dotl/file" | cut -d' ' -f2,3)"
    expect "chown to a user of the table" "ok 1000 1000" \
        "$(gefsvm chown "$1/dotl/file" 1000 1000) $(gefsvm stat "$2/dotl/file" | cut -d' ' -f2,3)"
    expect "chmod with setgid and sticky" 3755 "$(chmod 3755 "$1/dotl/file" && stat -c %a "$2/dotl/file")"
    expect "nlink of a file" 1 "$(gefsvm stat "$2/dotl/file" | cut -d' ' -f4)"
    expect "link(2): EPERM (GEFS has no hard links)" EPERM "$(gefsvm link "$1/dotl/file" "$1/dotl/hard")"
    # Device nodes (root has root powers here): stored, seen through the other mount as made.
    expect "mknod c 1 3 as root" ok "$(gefsvm mknod "$1/dotl/dev" chr)"
    expect "a character device 1,3 through the other mount" "1 3 character special file" \
        "$(stat -c '%t %T %F' "$2/dotl/dev")"
    expect "unlink of a device node" ok "$(rm "$1/dotl/dev" && echo ok)"
    # ftruncate through a descriptor open for writing, on a file of mode 0 (bob, 1000).
    mkdir "$1/dotl/bobs" && chmod 777 "$1/dotl/bobs"
    expect "ftruncate of a mode-0 file open for writing" "ok 3" \
        "$(gefsvm ftrunc0 "$1/dotl/bobs/f" 1000)"

    # statfs: the allocator's figures; writing 32 MiB takes at least that much space.
    st=$(gefsvm statfs "$2")
    set -- "$1" "$2" $st
    expect "statfs type is v9fs" 1021997 "$3"
    if [ "$5" -gt 0 ] && [ "$6" -le "$5" ] && [ "$7" -le "$6" ]; then ok "statfs: blocks $5, free $6, available $7 of $4 bytes"; else bad "statfs: $st"; fi
    # conv=fsync: Tfsync answers once the data is committed, so statfs must count it.
    dd if=/dev/urandom of="$1/dotl/big" bs=1M count=32 conv=fsync 2>/dev/null
    free2=$(gefsvm statfs "$2" | cut -d' ' -f4)
    if [ $(( ($6 - free2) * $4 )) -ge $((32 << 20)) ]; then ok "statfs: free space shrinks by the data written"; else bad "statfs: free $6 -> $free2 blocks of $4 after writing 32 MiB"; fi
    rm -f "$1/dotl/big"
}

# locks M B: POSIX byte-range locks taken through one mount are seen through the other.
locks() {
    printf '' >"$1/lockfile"
    mkfifo /tmp/hold
    gefsvm lock "$1/lockfile" 0 100 </tmp/hold >/tmp/held &
    exec 9>/tmp/hold
    i=0
    while [ ! -s /tmp/held ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    expect "write lock taken through the first mount" ok "$(cat /tmp/held)"
    expect "F_GETLK through the second mount sees it" "locked write" "$(gefsvm getlock "$2/lockfile" 50 10)"
    expect "F_SETLK through the second mount: EAGAIN" EAGAIN "$(gefsvm lock "$2/lockfile" 99 1 </dev/null)"
    expect "a range beyond it is free" ok "$(gefsvm lock "$2/lockfile" 100 10 </dev/null)"
    exec 9>&-
    wait
    expect "released when its holder exits" unlocked "$(gefsvm getlock "$2/lockfile" 0 100)"
    rm -f /tmp/hold /tmp/held
}

# sqlite M B C: two writers through two mounts, each in its own transactions, serialized by
# SQLite's fcntl locks; the database is checked through a third mount.
sqlite() {
    sqlite3 "$1/db" "create table t(who text, n integer);" || bad "sqlite3 create"
    for who in one two; do
        dir=$1
        [ $who = two ] && dir=$2
        (
            echo ".timeout 30000"
            i=0
            while [ $i -lt 100 ]; do
                echo "begin immediate; insert into t values('$who', $i); commit;"
                i=$((i + 1))
            done
        ) | sqlite3 "$dir/db" >/tmp/sql.$who 2>&1 &
    done
    wait
    expect "sqlite: writers through two mounts" "" "$(cat /tmp/sql.one /tmp/sql.two)"
    expect "sqlite: integrity_check" ok "$(sqlite3 "$3/db" 'pragma integrity_check;')"
    expect "sqlite: every row of both writers" "one|100 two|100" \
        "$(sqlite3 "$3/db" "select who, count(*) from t group by who order by who;" | tr '\n' ' ' | sed 's/ $//')"
}

# creates N: the creates measurement (see the parameters above), 9P2000.L without a cache.
creates() {
    mnt /mnt/g "$base" || return
    mnt /mnt/d "version=9p2000.L,uname=root,access=user,msize=262144,aname=$diod" || return
    for round in 1 2; do
        for s in gefsd:/mnt/g diod:/mnt/d; do
            d=${s#*:}/creates-$round
            mkdir "$d" || { bad "mkdir $d"; continue; }
            out=$(gefsvm creates "$d" "$1" 100)
            case $out in
            FAIL*) bad "creates through ${s%%:*}: $out" ;;
            *) echo "creates ${s%%:*} $round $out" ;;
            esac
        done
    done
}

echo "dialect $dialect"
section mount
[ -n "${creates:-}" ] && dialect=creates
case "$dialect" in
creates)
    dialect=9p2000.L
    section creates
    creates "$creates"
    ;;
9p2000)
    mnt /mnt/a "$base"
    mnt /mnt/b "$base"
    section fileops
    fileops /mnt/a/ops
    agree /mnt/a /mnt/b
    section fsx
    fsxrun /mnt/a /fsx-rw.toml 1 "$fsxops"
    section tree
    tree /mnt/a /mnt/b
    # No git here: git commits every file through a lock file renamed over the old one
    # (config.lock -> config), and 9P2000's wstat may not rename onto an existing name.
    ;;
9p2000.L)
    # a: the page cache (cache=loose); m and b: cache=mmap, whose reads and writes go to
    # gefsd (so two of them stay coherent) and whose mmap is cached; c: no cache, mounted
    # to read back what the others wrote.
    mnt /mnt/a "$base,cache=loose"
    mnt /mnt/m "$base,cache=mmap"
    mnt /mnt/b "$base,cache=mmap"
    mnt /mnt/c "$base"
    # A fresh image's top directory belongs to adm (id -1). Root must be able to create
    # there as on any file system; the rest works in t/, which the host made as alice's
    # (owner and group), so that one refusal does not hide the other results.
    expect "root creates at the top of a fresh image's mount" ok "$(gefsvm excl /mnt/a/top)"
    expect "t/, made by alice, is alice's" "1 1" "$(gefsvm stat /mnt/c/t | cut -d' ' -f2,3)"
    section fileops
    # Each mount in a directory of its own: both reach the same tree.
    fileops /mnt/a/t/ops-loose
    fileops /mnt/m/t/ops-mmap
    agree /mnt/m/t /mnt/b/t
    dotl_ops /mnt/a/t /mnt/c/t
    section locks
    locks /mnt/m/t /mnt/b/t
    sqlite /mnt/m/t /mnt/b/t /mnt/c/t
    section fsx
    fsxrun /mnt/a/t /fsx-mmap.toml 1 $((fsxops / 2))
    fsxrun /mnt/m/t /fsx-mmap.toml 2 $((fsxops - fsxops / 2))
    section tree
    tree /mnt/a/t /mnt/c/t
    section git
    gitrepo /mnt/a/t /mnt/c/t
    ;;
*)
    bad "unknown dialect $dialect"
    ;;
esac
section end
echo "verified: $dialect: $pass checks passed, $fail failed; fsx $fsx_ops operations; $tree_files files copied and compared with diff -r"
echo "time total $(echo "$(now) $t_start" | awk '{printf "%.1f", $1 - $2}')"
for m in $(grep ' 9p ' /proc/mounts | cut -d' ' -f2); do umount "$m" || bad "umount $m"; done
[ $fail -gt 100 ] && fail=100
exit $fail
