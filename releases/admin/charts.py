"""The chart screen and its dependencies."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from releases import services
from releases.admin.display import short_digest
from releases.admin.transitions import StalledFilter, StateTransitionInline, TransitionAdmin
from releases.charts import mask_secret_values
from releases.choices import ChartState
from releases.models import (
    ChartDependency,
    EnvironmentVariable,
    HelmChart,
)


class ChartDependencyInline(admin.TabularInline):
    model = ChartDependency
    extra = 0
    readonly_fields = ("locked_version", "archive_digest", "lock_digest")  # what validation found in Chart.lock


@admin.register(HelmChart)
class HelmChartAdmin(TransitionAdmin):
    final_states = (ChartState.INDEXED,)
    transition_actions = {"retry": services.retry_chart, "reject": partial(services.fail_work, HelmChart)}
    list_display = (
        "name",
        "chart_version",
        "app_version",
        "state",
        "stalled",
        "digest_short",
        "created",
        "signed",
    )
    list_filter = ("state", StalledFilter, "name")
    search_fields = ("name", "chart_version", "app_version", "digest")
    readonly_fields = (
        "digest",
        "size",
        "progress",
        "problems",
        "warnings",
        "image_pins",
        "shown_values",
        "chart_metadata",
        "last_progress_at",
        "stall_requeues",
        "signed_with",
        "signatures",
    )
    exclude = ("values",)
    filter_horizontal = ("environment_variables",)
    inlines = [ChartDependencyInline, StateTransitionInline]

    @admin.display(description="values as published: pinned to the images' digests (secret variables masked)")
    def shown_values(self, obj: HelmChart) -> str:
        secret_names = set(EnvironmentVariable.objects.filter(secret=True).values_list("name", flat=True))
        return format_html("<pre>{}</pre>", json.dumps(mask_secret_values(obj.values, secret_names), indent=2))

    @admin.display(description="digest")
    def digest_short(self, obj: HelmChart) -> str:
        return short_digest(obj.digest)

    @admin.display(description="signed", boolean=True)
    def signed(self, obj: HelmChart) -> bool:
        return obj.is_signed

    def get_inlines(self, request: HttpRequest, obj: Any = None):
        if self.is_final(obj):
            return [StateTransitionInline]
        return self.inlines
