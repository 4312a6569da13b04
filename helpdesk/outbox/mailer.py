"""Composing the outbox's e-mails, and sending them through an SMTP relay with its TLS mode and
credentials."""

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol

from helpdesk.core.settings import SmtpProvider


class MailError(Exception):
    """One message was not accepted. ``permanent`` means no provider can help (the recipient
    was refused outright): it is neither retried nor handed to the next provider. Anything else
    (provider down, timing out, TLS or login trouble, a 5xx) is the provider's failure: the next
    provider is tried, and the message retried later if none took it."""

    def __init__(self, detail: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.code = code


class MailSender(Protocol):
    """One provider, connected for one delivery run."""

    name: str
    timeout_seconds: float

    def send(self, message: EmailMessage) -> int:
        """Hand ``message`` over; return the provider's success code (250, 200), or raise
        MailError."""
        ...

    def close(self) -> None: ...


def compose(
    *, mail_from: str, to: str, subject: str, body: str, event: str, date: datetime
) -> EmailMessage:
    """The notification as every provider sends it. Raises ValueError on a header the email
    package refuses (a line break in it, say)."""
    _, address = parseaddr(mail_from)
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    # make_msgid() without a domain asks the resolver for this host's name on every message.
    message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or "localhost")
    # RFC 3834: out-of-office robots must not answer a notification.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Helpdesk-Event"] = event
    message.set_content(body)
    return message


class SmtpSender:
    """One SMTP connection, opened on the first message and reused for the rest of a run."""

    def __init__(self, config: SmtpProvider) -> None:
        self.config = config
        self.name = config.name
        self.timeout_seconds = config.timeout_seconds
        self._smtp: smtplib.SMTP | None = None

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the relay went away first; nothing is left to say goodbye to

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.tls == "ssl":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
        try:
            smtp.ehlo()
            if c.tls == "starttls":
                # Raises SMTPNotSupportedError when the relay does not offer STARTTLS: credentials
                # and customer mail are never sent in clear because a relay was misconfigured.
                smtp.starttls(context=context)
                smtp.ehlo()
            if c.username:
                password = c.password.get_secret_value() if c.password else ""
                smtp.login(c.username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> int:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(
                f"recipient refused ({', '.join(map(str, codes))})",
                permanent=all(code >= 500 for code in codes),
                code=max(codes, default=None),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise MailError(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", code=exc.smtp_code
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused connections, time-outs and TLS failures (ssl.SSLError).
            self._drop()
            raise MailError(f"{type(exc).__name__}: {exc}") from exc
        return 250

    def _drop(self) -> None:
        """Forget a connection in an unknown state; the next message opens a fresh one."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
