"""The core's refusals about accounts (`AccountError`) answered as the API's JSON errors.

`AccountError` carries an HTTP-like status and a sentence for the person; inside a request it
becomes an `ApiError` with the same status, message and extra fields (`fields`), so `audited`
records it as refused and the client reads `{"error": ..., "fields": [...]}`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from dashfleet_core.accounts import AccountError

from .auth import ApiError


def as_api_error(exc: AccountError) -> ApiError:
    return ApiError(exc.status, exc.message, **exc.extra)


@contextmanager
def account_errors() -> Iterator[None]:
    """Turn an AccountError raised in the block into the matching ApiError."""
    try:
        yield
    except AccountError as exc:
        raise as_api_error(exc) from None
