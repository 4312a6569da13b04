"""Access tokens already verified by this process, so a client's next request skips the
signature check and the decoding.

Only what the token itself proves is kept: its signature and claims. Whether the session it
names is still open, and whether its user is still a member, is asked of the database on
every request (helpdesk.pipeline), so a logout or a removal still counts on the next request.
A token is kept until it expires, then verified afresh (and so refused as expired).
"""

import time
from dataclasses import dataclass, field

from auth.tokens import AccessClaims, decode_access_token
from helpdesk.core.settings import Settings

# A few thousand clients' tokens: each entry is a token string and its claims, under 1 KiB.
DEFAULT_CAPACITY = 4096


@dataclass(slots=True)
class VerifiedTokens:
    settings: Settings
    capacity: int = DEFAULT_CAPACITY
    _claims: dict[str, tuple[AccessClaims, float]] = field(default_factory=dict)

    def claims(self, token: str) -> AccessClaims:
        """The token's claims, verified now or earlier; raises Unauthorized as
        ``decode_access_token`` does."""
        kept = self._claims.get(token)
        if kept is not None:
            claims, expires = kept
            # PyJWT's own rule: a token is expired from its exp second on.
            if time.time() < expires:
                return claims
            del self._claims[token]
        claims = decode_access_token(self.settings, token)
        if len(self._claims) >= self.capacity:
            # The oldest verification goes first (dicts keep insertion order).
            del self._claims[next(iter(self._claims))]
        self._claims[token] = (claims, claims.expires_at.timestamp())
        return claims
