"""Environment variables, with secret values masked."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from releases.models import (
    EnvironmentVariable,
)


class EnvironmentVariableForm(forms.ModelForm):
    """Never renders a secret's value; an empty submission keeps the stored one."""

    class Meta:
        model = EnvironmentVariable
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.secret:
            self.fields["default_value"].widget = forms.PasswordInput(render_value=False)
            self.fields["default_value"].help_text = "Secret: the stored value is hidden; leave empty to keep it."
            self.initial["default_value"] = ""

    def clean_default_value(self) -> str:
        value = self.cleaned_data.get("default_value", "")
        if not value and self.instance.pk and self.instance.secret:
            return EnvironmentVariable.objects.get(pk=self.instance.pk).default_value
        return value


@admin.register(EnvironmentVariable)
class EnvironmentVariableAdmin(admin.ModelAdmin):
    form = EnvironmentVariableForm
    list_display = ("name", "scope", "required", "secret", "shown_default", "description")
    list_filter = ("scope", "required", "secret")
    search_fields = ("name", "description")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # ?default_value__startswith= would answer, row count by row count, what a secret starts with.
        if lookup.partition("__")[0] == "default_value":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="default value")
    def shown_default(self, obj: EnvironmentVariable) -> str:
        if obj.secret:
            return format_html("<em>{}</em>", "hidden" if obj.default_value else "—")
        return obj.default_value or "—"
