"""API-token authentication and the read/write permission."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from ..models import ApiToken


class TokenClient:
    """The ``request.user`` of a token-authenticated request: a CI client, not a person."""

    is_authenticated = True
    is_staff = False
    is_anonymous = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.username = f"token:{token.name}"
        self.pk = None

    def __str__(self) -> str:
        return self.username


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` with a token created in the admin."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != self.keyword:
            return None
        token = ApiToken.authenticate(key.strip())
        if token is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API token; create one in the admin")
        return TokenClient(token), token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ReadOrWriteToken(permissions.BasePermission):
    """Reads: public when ``API_READS_PUBLIC``, else any token or staff session. Writes: a write token
    or a staff session."""

    message = "this needs an API token with the write scope; create one in the admin"

    def has_permission(self, request, view) -> bool:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        staff = bool(getattr(request.user, "is_staff", False))
        if request.method in permissions.SAFE_METHODS:
            return settings.API_READS_PUBLIC or token is not None or staff
        return staff or (token is not None and token.can_write)
