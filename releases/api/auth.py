"""API-token authentication and the read/write permission."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from .. import services
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
    """Reads: public when ``API_READS_PUBLIC``, else any token or a staff session. Writes: a write
    token, or a session whose user holds the Django permission of the use case the view names in
    ``use_cases`` (action -> use case, see ``services.PERMISSION_TO``). Being staff is not enough,
    and a write the view does not name is refused."""

    message = (
        "this needs an API token with the write scope, or a session of a user with the permission to do it; "
        "create a token in the admin or ask an administrator for the permission"
    )

    def has_permission(self, request, view) -> bool:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if request.method in permissions.SAFE_METHODS:
            return settings.API_READS_PUBLIC or token is not None or bool(getattr(request.user, "is_staff", False))
        if token is not None:
            return token.can_write
        use_case = getattr(view, "use_cases", {}).get(getattr(view, "action", None))
        return use_case is not None and services.may(request.user, use_case)
