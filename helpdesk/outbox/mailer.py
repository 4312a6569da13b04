"""Sending the outbox's e-mails over SMTP with the TLS mode and credentials from settings."""

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from types import TracebackType

from helpdesk.core.settings import Settings

# Long enough for a slow relay to accept DATA, short enough that one dead relay does not hold a
# whole batch (and its lease) for minutes.
SMTP_TIMEOUT_SECONDS = 30.0


class MailError(Exception):
    """One message was not accepted. ``permanent`` means retrying cannot help (the relay refused
    the recipient outright); anything else (relay down, TLS or login trouble) is retried."""

    def __init__(self, detail: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.code = code


class Mailer:
    """One SMTP connection, opened on the first message and reused for the rest of a run."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("the mailer needs HELPDESK_SMTP_HOST")
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        _, address = parseaddr(settings.mail_from)
        # make_msgid() without a domain asks the resolver for this host's name on every message.
        self._msgid_domain = address.rpartition("@")[2] or "localhost"

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the relay went away first; nothing is left to say goodbye to

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        host = s.smtp_host or ""
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                host, s.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            smtp = smtplib.SMTP(host, s.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        try:
            smtp.ehlo()
            if s.smtp_tls == "starttls":
                # Raises SMTPNotSupportedError when the relay does not offer STARTTLS: credentials
                # and customer mail are never sent in clear because a relay was misconfigured.
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def message(
        self, *, to: str, subject: str, body: str, event: str, date: datetime
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(date)
        message["Message-ID"] = make_msgid(domain=self._msgid_domain)
        # RFC 3834: out-of-office robots must not answer a notification.
        message["Auto-Submitted"] = "auto-generated"
        message["X-Helpdesk-Event"] = event
        message.set_content(body)
        return message

    def send(self, message: EmailMessage) -> None:
        """Send one message; raise MailError when the relay did not take it."""
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

    def _drop(self) -> None:
        """Forget a connection in an unknown state; the next message opens a fresh one."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
