from __future__ import annotations

from django.db import models
from django.db.models import Q

from ..choices import EnvironmentScope
from ..validators import ENV_NAME_PATTERN, validate_env_name
from .encryption import ENCRYPTED_PREFIX, SecretValueField


class EnvironmentVariable(models.Model):
    """A configuration option of the deployed app, documented for operators.

    Refuses: names that are not UPPER_SNAKE_CASE, an empty description, and an empty default on a
    variable that is not required, and a plain value that looks encrypted. Secret values are
    encrypted at rest (``FIELD_ENCRYPTION_KEYS``) and never shown by the admin or the API.
    """

    name = models.CharField(max_length=128, unique=True, validators=[validate_env_name])
    default_value = SecretValueField(blank=True, secret_flag="secret")
    description = models.TextField(blank=True, help_text="What it configures (required).")
    required = models.BooleanField(default=False)
    scope = models.CharField(max_length=16, choices=EnvironmentScope.choices, default=EnvironmentScope.BOTH)
    secret = models.BooleanField(default=False, help_text="Whether it holds sensitive data.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=ENV_NAME_PATTERN), name="envvar_name_upper_snake_case"),
            models.CheckConstraint(condition=~Q(description=""), name="envvar_description_required"),
            models.CheckConstraint(
                condition=Q(required=True) | ~Q(default_value=""), name="envvar_default_unless_required"
            ),
            models.CheckConstraint(condition=Q(scope__in=EnvironmentScope.values), name="envvar_scope_known"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        if not (self.description or "").strip():
            errors["description"] = f"describe what {self.name or 'this variable'} configures"
        if not self.required and not self.default_value:
            errors["default_value"] = (
                "a variable that is not required needs a default value; give one or mark it required"
            )
        if (self.default_value or "").startswith(ENCRYPTED_PREFIX):
            errors["default_value"] = f"values starting with {ENCRYPTED_PREFIX!r} are reserved; choose another value"
        if errors:
            raise ValidationError(errors)
