"""Sending the outbox's e-mails through an HTTP e-mail API (Postmark's `POST /email`) with
httpx: the fallback, or the primary, beside SMTP relays."""

from email.message import EmailMessage

import httpx

from helpdesk.core.settings import PostmarkProvider
from helpdesk.outbox.mailer import MailError

# Postmark's error codes that concern the recipient, not the service: another provider would
# refuse the same address (300: invalid e-mail request, 406: inactive recipient).
_RECIPIENT_ERRORS = frozenset({300, 406})
# Headers Postmark takes as fields of their own (or sets itself), not in "Headers".
_OWN_FIELDS = frozenset({"from", "to", "subject", "date", "message-id", "mime-version"})


class PostmarkSender:
    def __init__(self, config: PostmarkProvider) -> None:
        self.config = config
        self.name = config.name
        self.timeout_seconds = config.timeout_seconds
        self._http = httpx.Client(timeout=config.timeout_seconds, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def send(self, message: EmailMessage) -> int:
        document = {
            "From": message["From"],
            "To": message["To"],
            "Subject": message["Subject"],
            "TextBody": message.get_content(),
            "MessageStream": self.config.message_stream,
            "Headers": [
                {"Name": name, "Value": str(value)}
                for name, value in message.items()
                if name.lower() not in _OWN_FIELDS and not name.lower().startswith("content-")
            ],
        }
        headers = {
            "Accept": "application/json",
            "X-Postmark-Server-Token": self.config.token.get_secret_value(),
        }
        try:
            response = self._http.post(self.config.url, json=document, headers=headers)
        except httpx.TimeoutException as exc:
            raise MailError(f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc
        code = response.status_code
        if 200 <= code < 300:
            return code
        error_code, detail = _error(response)
        raise MailError(
            f"HTTP {code}: {detail}"[:300],
            permanent=code == 422 and error_code in _RECIPIENT_ERRORS,
            code=code,
        )


def _error(response: httpx.Response) -> tuple[int | None, str]:
    """Postmark's ``{"ErrorCode": n, "Message": "..."}``, or the start of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200]
    if not isinstance(body, dict):
        return None, response.text[:200]
    code = body.get("ErrorCode")
    return (code if isinstance(code, int) else None), str(body.get("Message", ""))[:200]
