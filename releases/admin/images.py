"""The image screen."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from releases import services
from releases.admin import controlroom
from releases.admin.display import (
    build_steps_html,
    environment_html,
    key_value_html,
    platform_digests_html,
    scan_findings_html,
    short_digest,
    signing_html,
    stage_bases_html,
)
from releases.admin.transitions import StalledFilter, TransitionAdmin
from releases.choices import ImageState
from releases.models import (
    DockerImage,
)


@admin.register(DockerImage)
class DockerImageAdmin(TransitionAdmin):
    final_states = (ImageState.AVAILABLE,)
    transition_actions = {"retry": services.retry_image, "fail": partial(services.fail_work, DockerImage)}
    list_display = (
        "name",
        "tag",
        "state",
        "progress",
        "stalled",
        "digest_short",
        "architectures",
        "size",
        "build_date",
        "signed",
    )
    list_filter = ("state", StalledFilter, "name")
    search_fields = ("name", "tag", "digest", "base_image")
    readonly_fields = (
        "digest",
        "size",
        "build_date",
        "signing",
        "platform_digests_table",
        "stage_bases_table",
        "build_steps_table",
        "scan_findings_table",
        "labels_table",
        "environment_table",
        "progress",
        "failure_reason",
        "component",
        "build_args",
        "signed_with",
        "signatures",
        "provenance",
        "last_progress_at",
        "stall_requeues",
        "full_build_log",
    )
    # Written by the pipeline only; shown as tables and the log panel instead of raw JSON.
    exclude = ("platform_digests", "scan_findings", "build_log", "stage_bases", "build_steps")
    shown_as_tables = ("labels",)
    filter_horizontal = ("environment_variables",)
    live_panel_template = "admin/releases/dockerimage/live.html"

    def live_context(self, obj: DockerImage) -> dict[str, Any]:
        return controlroom.image_panel(obj)

    @admin.display(description="signature")
    def signing(self, obj: DockerImage) -> str:
        return signing_html(controlroom.signing_status([obj]))

    @admin.display(description="platform digests")
    def platform_digests_table(self, obj: DockerImage) -> str:
        return platform_digests_html(obj.platform_digests, obj.repository, obj.digest)

    @admin.display(description="stage bases")
    def stage_bases_table(self, obj: DockerImage) -> str:
        return stage_bases_html(obj.stage_bases)

    @admin.display(description="build steps")
    def build_steps_table(self, obj: DockerImage) -> str:
        return build_steps_html(obj.build_steps)

    @admin.display(description="scan findings")
    def scan_findings_table(self, obj: DockerImage) -> str:
        return scan_findings_html(obj.scan_findings)

    @admin.display(description="labels")
    def labels_table(self, obj: DockerImage) -> str:
        return key_value_html(obj.labels, empty="no labels")

    @admin.display(description="environment variables")
    def environment_table(self, obj: DockerImage) -> str:
        return environment_html(obj.environment_variables.all() if obj.pk else [])

    @admin.display(description="build log")
    def full_build_log(self, obj: DockerImage) -> str:
        if not obj.build_log:
            return "—"
        lines = obj.build_log.count("\n") + 1
        return format_html(
            '<details><summary>all {} lines</summary><pre class="cr-log">{}</pre></details>', lines, obj.build_log
        )

    @admin.display(description="signed", boolean=True)
    def signed(self, obj: DockerImage) -> bool:
        return obj.is_signed

    @admin.display(description="digest")
    def digest_short(self, obj: DockerImage) -> str:
        return short_digest(obj.digest)

    @admin.display(description="architectures")
    def architectures(self, obj: DockerImage) -> str:
        return ", ".join(obj.architecture or [])

    def is_final(self, obj: Any) -> bool:
        return obj is not None and obj.tag_is_immutable
