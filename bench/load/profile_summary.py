"""Summarise py-spy's collapsed stacks (``--format raw``): the functions with the most
samples, inclusive and self, so the server's hot spots under load can be read in a
terminal.

    python bench/load/profile_summary.py var/bench-load/profile-SQLite-1.txt [--top 40]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title}")
        shown = 0
        for frame, n in counter.most_common():
            if args.filter and args.filter not in frame:
                continue
            print(f"{100 * n / total:5.1f}%  {frame}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
