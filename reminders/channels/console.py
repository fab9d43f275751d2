"""The embedded default channel: prints each message, and can append it to a JSON-lines file."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TextIO

from reminders.channels.base import OutgoingMessage, Receipt
from reminders.clock import utcnow
from reminders.privacy import mask_contact

# Every console transport (one per channel, one per sending thread) writes to the same
# terminal: one lock for all of them, so no message is cut by another.
_PRINTING = threading.Lock()


class Console:
    """Delivers to standard output (contacts masked) and, if set, to CONSOLE_OUTBOX."""

    def __init__(self, name: str, *, outbox: Path | None = None, out: TextIO | None = None):
        self.name = name
        self.outbox = outbox
        self.out = out or sys.stdout

    def send(self, message: OutgoingMessage) -> Receipt:
        sent_at = utcnow()
        lines = [f"[{self.name} to {mask_contact(message.to)}] {message.key}"]
        if message.subject:
            lines.append(f"  Subject: {message.subject}")
        lines.append(f"  {message.body.strip()}")
        with _PRINTING:
            # One write of the whole message: a print() per line could be split between lines.
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
            if self.outbox is not None:
                line = {
                    "outbox_id": message.outbox_id,
                    "course_id": message.course_id,
                    "key": message.key,
                    "channel": message.channel,
                    "to": message.to,
                    "subject": message.subject,
                    "body": message.body,
                    "sent_at": sent_at.isoformat(),
                }
                with self.outbox.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return Receipt(provider_id=f"console-{message.outbox_id}")

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        """The console keeps no record to ask: a stranded message is printed again."""
        return None

    def close(self) -> None:
        return None
