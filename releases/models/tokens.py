from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A credential for REST clients (CI pipelines): ``Authorization: Bearer <token>``.

    Only the SHA-256 of the token is stored; the token itself is shown once, when it is created
    in the admin. ``write`` tokens may create and publish releases; ``read`` tokens only read.
    """

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"

    name = models.CharField(max_length=100, unique=True, help_text="Who uses it, e.g. 'github-actions'.")
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="The first characters, to recognise it.")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def issue(self) -> str:
        """Give this token a new secret; return it (it is not stored and cannot be shown again)."""
        key = "rr_" + secrets.token_urlsafe(32)
        self.key_hash = self.hash(key)
        self.prefix = key[:10]
        return key

    @classmethod
    def authenticate(cls, key: str) -> ApiToken | None:
        token = cls.objects.filter(key_hash=cls.hash(key), revoked=False).first()
        if token is not None:
            cls.objects.filter(pk=token.pk).update(last_used=timezone.now())
        return token

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE

    @classmethod
    def from_authorization(cls, header: str) -> ApiToken | None:
        """The live token an ``Authorization`` header carries: ``Bearer <token>``, or HTTP basic auth
        with the token as the password and any username (what ``helm repo add --username x
        --password <token>`` sends). ``None`` for anything else."""
        scheme, _, credentials = (header or "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            key = credentials
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            key = decoded.partition(":")[2]
        else:
            return None
        return cls.authenticate(key) if key else None
