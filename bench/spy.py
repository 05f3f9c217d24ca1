"""Summarise a py-spy raw (collapsed stacks) file: ``python -m bench.spy out.txt [N] [--from FUNC]``.

Prints the N functions with the most samples on the stack (inclusive) and on top (self), as a
share of all samples — or of the samples under ``FUNC`` with ``--from``. Sampling costs the
profiled code nothing, unlike a tracing profiler's per-call hook.
"""

from __future__ import annotations

import sys
from collections import Counter


def summarise(path: str, top: int = 40, under: str | None = None) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = [frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].split(":")[0] for frame in stack.split(";")]
            if under is not None:
                at = next((i for i, frame in enumerate(frames) if frame.startswith(under + " ")), None)
                if at is None:
                    continue
                frames = frames[at:]
            n = int(count)
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    lines = [f"{total:,} samples{f' under {under}' if under else ''}", f"{'incl %':>7} {'self %':>7}  function"]
    for frame, n in inclusive.most_common(top):
        lines.append(f"{100 * n / total:7.1f} {100 * own[frame] / total:7.1f}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    frm = sys.argv[sys.argv.index("--from") + 1] if "--from" in sys.argv else None
    if frm in args:
        args.remove(frm)
    print(summarise(args[0], int(args[1]) if len(args) > 1 else 40, frm))
