"""Email over SMTP, one reused connection per thread, replies translated to DeliveryError."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from reminders.channels.base import DeliveryError, OutgoingMessage, Receipt
from reminders.config import ConfigError, Settings
from reminders.pacing import RateLimiter
from reminders.privacy import mask_email

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
# SMTP's own line limit (RFC 5322: 998 characters), not the 78 columns the standard policy
# folds at: folding an unbreakable `<https://...>` makes the email package RFC 2047-encode
# it, and Gmail's and Yahoo's one-click unsubscribe then never see the link.
WIRE_POLICY = SMTP_POLICY.clone(max_line_length=998)
# An RFC 3463 enhanced status code at the start of a reply text, e.g. "5.1.1".
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")


@dataclass(frozen=True)
class SmtpUrl:
    """What SMTP_URL says: where to connect, how to secure it, who to log in as."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    verify: bool

    @classmethod
    def parse(cls, url: str) -> SmtpUrl:
        """Parse `smtp://user:pass@host:587`, `smtps://host:465` or `smtp://host:25`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            # Not the parser's message: it may quote part of the URL, password included.
            raise ConfigError("SMTP_URL is malformed (bad port or brackets)") from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise ConfigError("SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ConfigError("SMTP_URL has no host")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"verify"}
        if unknown:
            raise ConfigError(f"SMTP_URL has unknown options: {', '.join(sorted(unknown))}")
        verify = query.get("verify", "true").lower()
        if verify not in ("true", "false"):
            raise ConfigError("SMTP_URL option verify must be true or false")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if (username is None) != (password is None):
            raise ConfigError("SMTP_URL needs both a user and a password, or neither")
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port or _DEFAULT_PORTS[parts.scheme],
            username=username,
            password=password,
            # ?verify=false turns off certificate checks: only for a relay with a self-signed
            # certificate on a trusted network, or for tests. Never for a public provider.
            verify=verify == "true",
        )


class SmtpEmail:
    """Sends multipart email through one SMTP server, reusing a connection per thread."""

    name = "email"

    def __init__(
        self,
        *,
        url: str,
        from_address: str,
        timeout: float = 30.0,
        max_per_second: float = 5.0,
    ) -> None:
        self.server = SmtpUrl.parse(url)
        self.from_address = from_address
        self.timeout = timeout
        self.limiter = RateLimiter(max_per_second)
        # smtplib.SMTP is one conversation and not safe to share; each sending thread keeps
        # its own, reused across the batch, and close() quits all of them.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[smtplib.SMTP] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmail:
        """Build from the environment, naming the variable that is missing or wrong."""
        if settings.smtp_url is None or not settings.smtp_url.get_secret_value():
            raise ConfigError("SMTP_URL is not set")
        if not settings.email_from:
            raise ConfigError("EMAIL_FROM is not set")
        if "@" not in settings.email_from:
            raise ConfigError("EMAIL_FROM is not an email address")
        return cls(
            url=settings.smtp_url.get_secret_value(),
            from_address=settings.email_from,
            timeout=settings.smtp_timeout,
            max_per_second=settings.smtp_max_per_second,
        )

    # -- connections -----------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.server.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        conn: smtplib.SMTP
        if server.scheme == "smtps":
            conn = smtplib.SMTP_SSL(
                server.host, server.port, timeout=self.timeout, context=self._tls_context()
            )
        else:
            conn = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if server.scheme == "smtp" and conn.has_extn("starttls"):
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            elif server.scheme == "smtp" and server.username:
                # Credentials never cross the network in the clear.
                raise DeliveryError(
                    "SMTP server does not offer STARTTLS; refusing to send credentials",
                    permanent=False,
                    code="starttls",
                )
            if server.username and server.password:
                conn.login(server.username, server.password)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._connections.add(conn)
        return conn

    def _drop(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            self._connections.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        conn.close()

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        """SMTP keeps no list to ask: EMAIL_UNKNOWN_POLICY decides for a stranded email."""
        return None

    def close(self) -> None:
        """Say QUIT on every open connection."""
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    # -- sending ---------------------------------------------------------------------------

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The MIME message for `message`: text, HTML alternative, one-click unsubscribe."""
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message.message_id_header or make_msgid()
        if message.unsubscribe_url:
            # RFC 8058: mail clients show an unsubscribe button and POST to the link.
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.body)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, message: OutgoingMessage) -> Receipt:
        """Hand one email to the SMTP server; raise DeliveryError saying whether to retry."""
        try:
            data = self.build(message).as_bytes(policy=WIRE_POLICY)
        except (ValueError, TypeError) as exc:
            # A header with a line break or an unusable address: the same input fails again.
            raise DeliveryError(
                f"email not buildable: {type(exc).__name__}", permanent=True, code="unbuildable"
            ) from None
        self.limiter.acquire()
        try:
            self._transmit(message.to, data)
        except DeliveryError as error:
            log.warning(
                "email to %s failed (outbox %s): %s, %s",
                mask_email(message.to),
                message.outbox_id,
                error.reason,
                "permanent" if error.permanent else "will retry",
            )
            raise
        # The dispatcher logs the send at INFO: one line a message is enough.
        log.debug("email accepted for %s (outbox %s)", mask_email(message.to), message.outbox_id)
        return Receipt(provider_id=message.message_id_header)

    def _transmit(self, to: str, data: bytes) -> None:
        conn = getattr(self._local, "conn", None)
        reused = conn is not None
        try:
            if conn is None:
                conn = self._local.conn = self._connect()
            try:
                code, reply = conn.mail(self.from_address)
            except (smtplib.SMTPServerDisconnected, OSError):
                if not reused:
                    raise
                # The server hung up on the idle connection; nothing was sent yet, so a fresh
                # one is safe. Later phases are not retried here: after DATA, a lost reply
                # may hide an accepted message.
                self._drop(conn)
                conn = self._local.conn = self._connect()
                code, reply = conn.mail(self.from_address)
            if code != 250:
                self._reset(conn)
                raise _reply_error("MAIL", code, reply)
            code, reply = conn.rcpt(to)
            if code not in (250, 251):
                self._reset(conn)
                raise _reply_error("RCPT", code, reply)
            code, reply = conn.data(data)
            if code != 250:
                self._reset(conn)
                raise _reply_error("DATA", code, reply)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._forget(conn)
            # Wrong credentials are an operator's problem, not the recipient's: retry, loudly.
            raise DeliveryError(
                f"SMTP {exc.smtp_code} authentication failed, check the user and password "
                "in SMTP_URL",
                permanent=False,
                code=str(exc.smtp_code),
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._forget(conn)
            raise DeliveryError(
                "SMTP server does not support AUTH", permanent=False, code="auth"
            ) from None
        except smtplib.SMTPDataError as exc:
            # DATA itself refused, before any content went out.
            self._reset(conn)
            raise _reply_error("DATA", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPResponseException as exc:
            # The greeting, EHLO or STARTTLS refused, or a 421 "closing connection": the
            # server's state, not the recipient's, so never a reason to give a message up.
            self._forget(conn)
            raise DeliveryError(
                f"SMTP {exc.smtp_code} while connecting", permanent=False, code=str(exc.smtp_code)
            ) from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            # Refused, reset, timed out, TLS failure, or hung up: all worth another try.
            self._forget(conn)
            raise DeliveryError(
                f"SMTP connection error: {type(exc).__name__}", permanent=False, code="connection"
            ) from None

    def _reset(self, conn: smtplib.SMTP | None) -> None:
        # RSET clears the refused transaction so the connection serves the next message.
        if conn is None:
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._forget(conn)

    def _forget(self, conn: smtplib.SMTP | None) -> None:
        if conn is not None:
            self._drop(conn)
        self._local.conn = None


def _reply_error(stage: str, code: int, reply: bytes | str) -> DeliveryError:
    """A refused command as DeliveryError: 4xx retry, 5xx give up, 5.1.1 means no such mailbox.

    An unknown mailbox says the address is wrong, not that the patient withdrew consent: it
    is reported as unreachable, never as an opt-out.
    """
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    match = _ENHANCED.match(text)
    enhanced = match.group(1) if match else ""
    # Only the codes go into the reason: reply texts often quote the address.
    reason = " ".join(part for part in ("SMTP", str(code), enhanced, "at", stage) if part)
    named = enhanced or str(code)
    if 400 <= code < 500:
        return DeliveryError(reason, permanent=False, code=named)
    if code == 550 and enhanced == "5.1.1":
        return DeliveryError(reason, permanent=True, unreachable=True, code=named)
    if 500 <= code < 600:
        return DeliveryError(reason, permanent=True, code=named)
    return DeliveryError(reason, permanent=False, code=named)
