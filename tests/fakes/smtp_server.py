"""A real SMTP server on loopback (aiosmtpd) with STARTTLS, AUTH and scripted replies."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a throwaway certificate for localhost/127.0.0.1 and return (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        # The openssl CLI, because the `cryptography` package is not among our dependencies.
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "2",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-keyout", str(key), "-out", str(cert),
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def _free_port() -> int:
    # aiosmtpd's Controller cannot take port 0: it connects to its own port to start up.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedEmail:
    """One accepted message: the envelope and the parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None  # the AUTH user, None for an anonymous session
    tls: bool  # whether the session was encrypted (STARTTLS or implicit TLS)
    received_monotonic: float


class _Handler:
    def __init__(self, fake: SmtpServer) -> None:
        self.fake = fake

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.fake._take_reply("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.fake._take_reply("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.fake._take_reply("DATA")
        if reply:
            return reply
        raw = envelope.original_content or b""
        # Parsed with native line endings, so a part's content compares equal to the text sent.
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.fake._capture(
            ReceivedEmail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=parsed,
                raw=raw,
                login=login,
                tls=session.ssl is not None or self.fake.implicit_tls,
                received_monotonic=time.monotonic(),
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    def __init__(self, fake: SmtpServer, **kwargs: Any) -> None:
        super().__init__(_Handler(fake), **kwargs)
        self.fake = fake

    def factory(self) -> SMTP:
        # Called once per accepted connection: the count proves a batch reuses one.
        smtp = super().factory()
        self.fake._connected(smtp)
        return smtp


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with optional STARTTLS (or implicit TLS) and LOGIN/PLAIN AUTH."""

    def __init__(
        self,
        *,
        cert_dir: Path | None = None,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        implicit_tls: bool = False,
    ) -> None:
        self.user = user
        self.password = password
        self._tls_context: ssl.SSLContext | None = None
        if starttls or implicit_tls:
            if cert_dir is None:
                raise ValueError("TLS needs a cert_dir for the self-signed certificate")
            cert, key = make_self_signed_cert(cert_dir)
            self._tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls_context.load_cert_chain(cert, key)
        self.implicit_tls = implicit_tls
        self.port = 0
        self._lock = threading.Lock()
        self._received: list[ReceivedEmail] = []
        self._replies: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self._sessions: list[SMTP] = []
        self.connections = 0
        self.auth_failures = 0
        self._controller: _Controller | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {
            "hostname": "127.0.0.1",
            # A fixed name: the default asks DNS for this machine's FQDN, which can stall.
            "server_hostname": "localhost",
            "ready_timeout": 10.0,
        }
        if self.implicit_tls:
            kwargs["ssl_context"] = self._tls_context
        elif self._tls_context is not None:
            kwargs["tls_context"] = self._tls_context
        if self.user is not None:
            kwargs["authenticator"] = self._authenticate
            if self.implicit_tls:
                # aiosmtpd cannot tell the socket is already encrypted and would hide AUTH;
                # AUTH stays optional there, since requiring it without TLS makes aiosmtpd warn.
                kwargs["auth_require_tls"] = False
            else:
                kwargs["auth_required"] = True
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            controller = _Controller(self, port=self.port, **kwargs)
            try:
                controller.start()
            except OSError:
                controller.loop.close()
                continue
            self._controller = controller
            break
        else:
            raise RuntimeError("no free port for the SMTP server")
        with self._lock:
            # start() opened one connection of its own to check the server answers.
            self.connections = 0
            self._sessions.clear()
        return self

    def stop(self) -> None:
        if self._controller is None:
            return
        self.disconnect_all()
        self._controller.stop()
        self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, *, scheme: str | None = None, credentials: bool = True) -> str:
        """An SMTP_URL for this server; `?verify=false` because the certificate is ours."""
        scheme = scheme or ("smtps" if self.implicit_tls else "smtp")
        auth = f"{self.user}:{self.password}@" if credentials and self.user else ""
        query = "?verify=false" if self._tls_context is not None else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}{query}"

    # -- what was received -----------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._received)

    def _capture(self, item: ReceivedEmail) -> None:
        with self._lock:
            self._received.append(item)

    def _connected(self, smtp: SMTP) -> None:
        with self._lock:
            self.connections += 1
            self._sessions.append(smtp)

    # -- scripted behaviour ----------------------------------------------------------------

    def reply_next(self, reply: str, *, at: str = "RCPT") -> None:
        """Answer the next MAIL, RCPT or DATA with `reply`, e.g. "451 4.3.0 Try again later"."""
        with self._lock:
            self._replies[at.upper()].append(reply)

    def _take_reply(self, command: str) -> str | None:
        with self._lock:
            queue = self._replies[command]
            return queue.popleft() if queue else None

    def disconnect_all(self) -> None:
        """Hang up on every client, as a server does with idle connections."""
        controller = self._controller
        if controller is None:
            return
        with self._lock:
            sessions, self._sessions = self._sessions, []

        async def hang_up() -> None:
            for smtp in sessions:
                if smtp.transport is not None:
                    smtp.transport.close()
            await asyncio.sleep(0)  # let the loop run the close callbacks

        asyncio.run_coroutine_threadsafe(hang_up(), controller.loop).result(timeout=5)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        with self._lock:
            self.auth_failures += 1
        # handled=False makes aiosmtpd send the 535 reply itself; handled=True would leave
        # the client waiting for an answer that never comes.
        return AuthResult(success=False, handled=False)
