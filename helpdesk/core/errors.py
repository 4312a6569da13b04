"""The application's error hierarchy; one handler in the app renders them as API.md's JSON."""


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidInput(AppError):
    """A 422 found by a rule rather than by type checks; ``field`` names the offending input so
    the response keeps FastAPI's ``[{loc, msg, type}]`` form."""

    status_code = 422
    code = "invalid_input"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        source: str = "body",
    ) -> None:
        super().__init__(detail, code=code)
        self.loc = [source, field] if field else [source]


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "permission_denied"

    def __init__(
        self, detail: str, *, code: str | None = None, permission: str | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.permission = permission


class RetryLater(AppError):
    """A refusal the client should retry after ``retry_after`` seconds (the Retry-After header)."""

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class RateLimited(RetryLater):
    status_code = 429
    code = "rate_limited"


class Overloaded(RetryLater):
    """No database connection came free within the wait bound."""

    status_code = 503
    code = "overloaded"


class DatabaseUnavailable(RetryLater):
    """The database could not be reached, or the connection was lost mid-request."""

    status_code = 503
    code = "database_unavailable"
