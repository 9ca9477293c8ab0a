#!/usr/bin/env python3
"""classify.py GEFS.out TMPFS.out: the gefs run's failures, split into those the GEFS-policy
reference (tmpfs, no device nodes, no hard links, directory nlink 1) shares and the rest."""
import re, sys, collections
def load(p):
    fails = {}
    tests = None
    for line in open(p, errors='replace'):
        m = re.match(r'NOTOK /pjdp?/tests/(\S+) not ok (\d+)(.*)', line)
        if m:
            if '# TODO' in m.group(3):
                continue
            fails[(m.group(1), int(m.group(2)))] = m.group(3).strip()
        m = re.search(r'Files=(\d+), Tests=(\d+)', line)
        if m:
            tests = int(m.group(2))
    return fails, tests
g, gt = load(sys.argv[1])
r, rt = load(sys.argv[2])
shared = [k for k in g if k in r]
rest = sorted(k for k in g if k not in r)
print(f"gefs: {gt} tests, {len(g)} failures, {gt - len(g) if gt else '?'} pass"
      f" ({100 * (gt - len(g)) / gt:.1f}%)" if gt else f"gefs: {len(g)} failures")
print(f"reference (GEFS policy on tmpfs): {rt} tests, {len(r)} failures")
print(f"shared with the reference (device nodes, hard links, directory nlink): {len(shared)}")
if gt:
    print(f"pass rate of the tests the design choices leave: {gt - len(r)} checks, "
          f"{gt - len(r) - len(rest)} pass ({100 * (gt - len(r) - len(rest)) / (gt - len(r)):.1f}%)")
print(f"other failures: {len(rest)}")
per = collections.Counter(k[0] for k in rest)
print("  by file:", ", ".join(f"{f}:{n}" for f, n in sorted(per.items())))
for k in rest:
    msg = re.sub(r'pjdfstest_[0-9a-f]{28}([0-9a-f]{4})', r'N\1', g[k])
    print(f"  {k[0]} {k[1]} {msg[:200]}")
only_ref = [k for k in r if k not in g]
print(f"reference failures gefs passes: {len(only_ref)}")
for k in sorted(only_ref)[:20]:
    print(f"  {k[0]} {k[1]} {r[k][:160]}")
