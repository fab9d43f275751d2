"""Summarise py-spy's raw (collapsed) stacks: where the samples of a region went.

    py-spy record --format raw -o stacks.txt -- python -m bench ...
    python -m bench.stacks stacks.txt --within dispatch.py

`--within` keeps only samples whose stack passes through a frame containing that text.
Inclusive shares are given for every function; a frame is `function (file:line)`.
`--buckets` adds the share of each stage of the send path (the first that matches wins).
Recorded with `py-spy record --gil`, samples are taken only from the thread holding the
interpreter lock, so shares approximate where Python's CPU time goes.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"\s*\(([^)]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`send (reminders/channels/twilio_sms.py:123)` -> `send (twilio_sms.py)`."""
    match = _LINE.search(frame)
    if match is None:
        return frame
    path = match.group(1)
    short = "/".join(path.split("/")[-2:])
    return f"{frame[: match.start()].strip()} ({short})"


# Stages of the dispatch path, matched in this order against every frame of a sample.
BUCKETS = (
    ("twilio client: HTTP request and response", "MessageList.create"),
    ("twilio client: building a client", "TwilioSMS._client"),
    ("logging", "Logger."),
    ("recording a result (the fenced UPDATE and its commit)", "Dispatcher._send_one"),
    ("claim", "claim (reminders/"),
    ("loading claimed rows", "Dispatcher._load"),
    ("checks and rendering (_decide)", "Dispatcher._decide"),
    ("thread pool and threads", "futures/"),
)


def bucket_of(frames: list[str]) -> str:
    for label, needle in BUCKETS:
        if any(needle in frame for frame in frames):
            return label
    return "other"


def summarise(path: Path, *, within: str | None, top: int, buckets: bool = False) -> str:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if within and not any(within in frame for frame in frames):
            continue
        count = int(count_text)
        total += count
        stages[bucket_of(frames)] += count
        names = [frame_name(frame) for frame in frames]
        for name in set(names):
            inclusive[name] += count
        leaf[names[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples" + (f" within {within!r}" if within else "")]
    if buckets:
        lines.append("stages:")
        for label, count in stages.most_common():
            lines.append(f"  {100 * count / total:5.1f}%  {label}")
    lines.append("inclusive:")
    for name, count in inclusive.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append("self:")
    for name, count in leaf.most_common(top // 2):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--within", help="keep samples through a frame containing this")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--buckets", action="store_true", help="shares of the send path stages")
    args = parser.parse_args()
    print(summarise(args.stacks, within=args.within, top=args.top, buckets=args.buckets))


if __name__ == "__main__":
    main()
