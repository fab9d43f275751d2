"""The Twilio-shaped test server in a process of its own, driven over stdin/stdout.

Run in-process, the server's Python threads would share the benchmark's GIL and its cost
would land on whichever loop is measured; in its own process it gets the other core, as a
provider would. Commands, one per line: `latency SECONDS`, `count`, `dump PATH`, `reset`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Provider:
    """Starts `python -m bench.provider` and talks to it."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.account_sid = ""
        self.auth_token = ""

    def __enter__(self) -> Provider:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.provider"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = json.loads(self._read())
        self.url, self.account_sid, self.auth_token = (
            hello["url"],
            hello["account_sid"],
            hello["auth_token"],
        )
        self.set_latency(self.latency)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _read(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the provider process exited")
        return line

    def _command(self, line: str) -> str:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._read().strip()

    def set_latency(self, seconds: float) -> None:
        self.latency = seconds
        self._command(f"latency {seconds}")

    def count(self) -> int:
        return int(self._command("count"))

    def reset(self) -> None:
        self._command("reset")

    def received(self, path: Path) -> list[dict[str, Any]]:
        """Every accepted message: its form fields and its arrival (monotonic, server side)."""
        self._command(f"dump {path}")
        return json.loads(path.read_text())


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fakes import twilio_server
    from tests.fakes.twilio_server import TwilioServer

    # socketserver's listen backlog of 5 resets connections when 64 senders connect at once;
    # a provider's edge accepts them, so the backlog is raised here, in this process only.
    twilio_server._HTTPServer.request_queue_size = 256
    server = TwilioServer().start()
    print(
        json.dumps(
            {"url": server.url, "account_sid": server.account_sid, "auth_token": server.auth_token}
        ),
        flush=True,
    )
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "latency":
            server.latency = float(argument)
            answer = "ok"
        elif command == "count":
            answer = str(len(server.messages))
        elif command == "dump":
            dumped = [
                {"fields": m.fields, "arrived": m.received_monotonic} for m in server.messages
            ]
            Path(argument).write_text(json.dumps(dumped))
            answer = "ok"
        elif command == "reset":
            with server._lock:
                server._messages.clear()
            answer = "ok"
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)
    server.stop()


if __name__ == "__main__":
    main()
