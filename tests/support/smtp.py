"""A real local SMTP relay for tests: an aiosmtpd handler that keeps what it accepts."""

import email.parser
import email.policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; ``refuse`` makes it reject recipients."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: set[str] = set()
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        # handled=False: aiosmtpd then answers the refusal (535) itself.
        return AuthResult(success=data.password == b"relay-password", handled=False)

    def messages(self) -> list[EmailMessage]:
        parse = email.parser.BytesParser(_class=EmailMessage, policy=email.policy.default)
        return [parse.parsebytes(e.original_content or b"") for e in self.envelopes]
