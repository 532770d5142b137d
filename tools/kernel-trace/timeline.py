# A decode benchmark's GPU timeline from tools/kernel-trace's records (start end name, ns): per step (a step
# begins with the embedding gather) the time between steps, the kernels' busy time and the gaps between
# them; then per kernel of the second-to-last step its calls, time and the gaps before it, and one
# layer in order; with driver calls in the records (TRACE_API=1), what the host called from the end of the
# second-to-last step's last kernel to its third segment, beside the kernels.
import sys, collections
ks, api = [], []
for line in open(sys.argv[1]):
    if line.startswith("api "):
        _, s, e, n = line.split(maxsplit=3)
        api.append((int(s), int(e), n.strip()))
        continue
    s, e, n = line.split(maxsplit=2)
    ks.append((int(s), int(e), n.strip()))
ks.sort()
api.sort()
print("kernels", len(ks))
idx = [i for i, k in enumerate(ks) if k[2].startswith("embed")]
print("steps", len(idx))
steps = []
for a, b in zip(idx, idx[1:]):
    seg = ks[a:b]
    span = seg[-1][1] - seg[0][0]
    busy = sum(e - s for s, e, _ in seg)
    steps.append((a, b, span, busy, ks[b][0] - seg[-1][1], ks[b][0] - seg[0][0]))
for a, b, span, busy, bubble, period in steps[-12:]:
    print(f"step {b-a} kernels: embed to embed {period/1e3:.1f} us, span {span/1e3:.1f}, busy {busy/1e3:.1f}, "
          f"gaps inside {(span-busy)/1e3:.1f}, idle after {bubble/1e3:.1f}")
a, b = steps[-2][0], steps[-2][1]
seg = ks[a:b]
per = {}
gapby = collections.defaultdict(float)
for i, (s, e, n) in enumerate(seg):
    d = per.setdefault(n[:60], [0, 0.0])
    d[0] += 1; d[1] += (e - s) / 1e3
    if i: gapby[n[:60]] += (s - seg[i-1][1]) / 1e3
print("kernel, calls, total us, gaps before it (sum, us)")
for n, (c, t) in sorted(per.items(), key=lambda x: -x[1][1]):
    print(f"  {n:60s} {c:4d} {t:9.1f} {gapby[n]:8.1f}")
norms = [i for i, k in enumerate(seg) if k[2].startswith("rms_norm")]
l0 = norms[8] if len(norms) > 8 else 0
print("layer 4 in order: start, duration, gap before (us)")
for i in range(l0, min(l0 + 11, len(seg))):
    s, e, n = seg[i]
    print(f"  {n[:60]:60s} {(s-seg[l0][0])/1e3:8.1f} {(e-s)/1e3:7.1f} {(s-seg[i-1][1])/1e3:6.1f}")
print("end of the step:")
for i in range(len(seg) - 6, len(seg)):
    s, e, n = seg[i]
    print(f"  {n[:60]:60s} {(e-s)/1e3:7.1f} {(s-seg[i-1][1])/1e3:6.1f}")
if api:
    t0 = ks[a - 1][1]  # the previous step's last kernel ends
    t1 = seg[min(len(seg) - 1, 40)][0]
    print("host and GPU from the previous step's last kernel (us from its end): driver calls, kernels")
    events = [(s, e, "  api " + n) for s, e, n in api if t0 - 50000 <= s <= t1]
    events += [(s, e, "GPU " + n[:50]) for s, e, n in ks[a:] if s <= t1]
    for s, e, n in sorted(events):
        if e >= t0 - 2000 or n.startswith("GPU"):
            print(f"  {(s - t0)/1e3:9.1f} {(e - s)/1e3:7.1f}  {n}")
    per = collections.defaultdict(lambda: [0, 0.0])
    for s, e, n in api:
        if seg[0][0] <= s < ks[b][0]:
            per[n][0] += 1
            per[n][1] += (e - s) / 1e3
    print("driver calls during that step: calls, total us")
    for n, (c, t) in sorted(per.items(), key=lambda x: -x[1][1])[:12]:
        print(f"  {n:40s} {c:5d} {t:9.1f}")
