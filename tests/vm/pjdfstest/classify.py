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
# A failure the reference shares is a design choice's. So is a bare check (`test_check`, no
# message) that follows a refused link or device node of the same file with no other failing
# call between: on the reference the undone link still moved the times it checks.
design = set()
last = None
for k in sorted(g):
    msg = g[k]
    if k in r:
        design.add(k)
    elif not msg and last and last[0] == k[0] and last[1]:
        design.add(k)
    if msg:
        last = (k[0], k in r and re.search(r"'(link|mknod) .*got EPERM", msg) is not None)
shared = sorted(design)
# Each design-choice failure by the refusal it follows in its file (the call refused, or what
# failed because of it: a missing file, a count of links).
causes = collections.Counter()
cause, cur = None, None
for k in shared:
    if k[0] != cur:
        cause, cur = None, k[0]
    msg = g[k]
    if re.search(r"'mknod(at)? \S+ (\S+ )?[bc] .*got EPERM", msg):
        cause = 'device nodes (mknod b/c refused)'
    elif re.search(r"'link(at)? .*got EPERM", msg):
        cause = 'hard links (link refused)'
    # Names of 255 bytes cut the message short of the node type: the test's directory tells.
    by_dir = {'link': 'hard links (link refused)', 'mknod': 'device nodes (mknod b/c refused)'}
    if cause is None and k[0].split('/')[0] not in by_dir and re.search(r'\bnlink\b', msg):
        causes['directory link count (1)'] += 1
        continue
    causes[cause or by_dir.get(k[0].split('/')[0], 'unattributed')] += 1
rest = sorted(k for k in g if k not in design)
print(f"gefs: {gt} tests, {len(g)} failures, {gt - len(g) if gt else '?'} pass"
      f" ({100 * (gt - len(g)) / gt:.1f}%)" if gt else f"gefs: {len(g)} failures")
print(f"reference (GEFS policy on tmpfs): {rt} tests, {len(r)} failures")
print(f"design choices (shared with the reference: device nodes, hard links, directory nlink): {len(shared)}")
for c, n in causes.most_common():
    print(f"  {c}: {n}")
if gt:
    left = gt - len(shared)
    print(f"checks the design choices leave: {left}, of which {left - len(rest)} pass"
          f" ({100 * (left - len(rest)) / left:.1f}%)")
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
