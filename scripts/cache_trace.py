#!/usr/bin/env python3
"""Where a decode token's time goes under --mem, from the expert cache's event trace.

    SWAPMOE_CACHE_TRACE=trace.txt swapmoe bench MODEL --mem 6G -n 16
    scripts/cache_trace.py trace.txt

The trace (src/cache/expert_cache.cpp) has one line per event: seconds, kind, layer,
expert, slot; kinds s/p/q (demand/prefetch/speculative read submitted; q's slot column is
the spare buffer), P (a speculated expert taken into a slot), c (read completed), r (request
of a layer's experts; the expert column holds how many), a (handed out), w/W (a wait for a
read begins/ends), x (release). Tokens are cut at the first MoE layer's request; the first
token (prompt) and the last are left out.

Prints, per token: the time, the share with at least one read in flight, the idle time of
the disk split into the token boundary (after the last MoE layer's last release, until
the first layer's request: output head, sampling, first attention; nothing can be read
then, since the first layer's experts depend on the new token) and inside the layers (the
reads queued so far were done while computing went on: the lookahead ran dry), and the
time the forward pass waited for reads.
"""
import collections
import sys


def main(path):
    ev = []
    for line in open(path):
        t, k, a, b, c = line.split()
        ev.append((float(t), k, int(a), int(b), int(c)))
    reqs = [e for e in ev if e[1] == 'r']
    if not reqs:
        sys.exit("no requests in the trace")
    first = min(e[2] for e in reqs)
    last = max(e[2] for e in reqs)
    starts = [e[0] for e in reqs if e[2] == first]
    if len(starts) < 3:
        sys.exit("need at least 3 tokens")
    t0, t1 = starts[1], starts[-1]
    ntok = len(starts) - 2
    inflight = 0
    prev = None
    phase = 'layer'
    busy = 0.0
    idle = collections.Counter()
    wait = 0.0
    wait_from = None
    counts = collections.Counter()
    for t, k, a, b, c in ev:
        if prev is not None and t0 <= prev and t <= t1:
            dt = t - prev
            if inflight > 0:
                busy += dt
            else:
                idle[phase] += dt
        prev = t
        if t0 <= t < t1:
            counts[k] += 1
        if k in 'spq':
            inflight += 1
        elif k == 'c':
            inflight -= 1
        elif k == 'r':
            phase = 'layer'
        elif k == 'x' and a == last:
            phase = 'boundary'
        elif k == 'w':
            wait_from = t
        elif k == 'W' and wait_from is not None:
            if t0 <= wait_from and t <= t1:
                wait += t - wait_from
            wait_from = None
    span = t1 - t0
    ms = lambda s: 1000.0 * s / ntok
    print(f"{ntok} tokens, {ms(span):.1f} ms/token; disk busy {100 * busy / span:.1f}%")
    print(f"disk idle: {ms(idle['boundary']):.1f} ms/token at the token boundary, "
          f"{ms(idle['layer']):.1f} ms/token inside layers")
    print(f"waiting for reads: {ms(wait):.1f} ms/token")
    names = {'s': 'demand reads', 'p': 'prefetch reads', 'q': 'speculative reads', 'P': 'speculated taken',
             'w': 'waits', 'a': 'experts handed out'}
    print("per token: " + ", ".join(f"{names[k]} {counts[k] / ntok:.1f}" for k in 'spqPwa'))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
