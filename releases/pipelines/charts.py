"""One ``HelmChart`` from ``validating`` to ``indexed``: validate, package, upload; resumable.

Validation lists every problem (Chart.yaml, values schema, rendered manifests against the
Kubernetes schemas, environment variables, images of ``app_version`` available) and a chart with
any problem ends ``invalid`` without a byte pushed. Packaging is reproducible, so a resumed
upload sends the same archive, and the same immutability guard as images refuses a chart version
that already holds other content.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .. import metrics
from ..charts import (
    ChartPackageError,
    EnvVarSpec,
    LoadedChart,
    PackagedChart,
    RenderFailed,
    check_environment,
    load_chart,
    package_chart,
    push_chart,
    render_chart,
    validate_manifests,
)
from ..choices import ChartState
from ..locks import CHART_LOCK, exclusive
from ..logcontext import log_context
from ..models import ChartDependency, HelmChart
from ..oci import RegistryError, RegistryUnavailable
from ..registry_client import registry_client
from ..transitions import TransitionRefused, fire_transition, record_artifact
from . import progress
from .errors import PipelineBusy, PipelineError, reraise_time_limit
from .source import checkout_source, release_of

TRANSIENT_ERRORS = (RegistryUnavailable,)


report_progress = partial(progress.report_progress, HelmChart)


def stage(chart_pk: int) -> str:
    """Where this row's pipeline is (state and progress), for a failure reason."""
    return progress.stage_of(HelmChart, chart_pk)


def run_chart_pipeline(chart_pk: int, *, task: str = "") -> str:
    """Drive one chart as far as it can go; return its final state.

    A problem a person must fix ends the chart ``invalid`` with every problem listed; a registry
    that is down propagates ``RegistryUnavailable`` for the task to retry.
    """
    with log_context(chart=chart_pk), exclusive(CHART_LOCK, chart_pk) as acquired:
        if not acquired:
            raise PipelineBusy(f"chart {chart_pk}: another worker is on it")
        workdir = Path(settings.BUILD_WORKDIR) / f"chart-{chart_pk}"
        try:
            return _advance(chart_pk, workdir, task)
        except TRANSIENT_ERRORS:
            raise
        except (PipelineError, RegistryError, ChartPackageError) as error:
            reraise_time_limit(error)
            reject_chart(chart_pk, [str(error)], task=task)
            metrics.task_failed("publish_chart", "refused")
            return ChartState.INVALID
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def reject_chart(chart_pk: int, problems: list[str], *, task: str = "") -> bool:
    """End an active chart ``invalid`` with every problem; False when it had already ended (or is gone)."""
    chart = HelmChart.objects.filter(pk=chart_pk).first()
    if chart is None or not chart.is_active:
        return False
    report_progress(chart_pk, "invalid")
    try:
        fire_transition(HelmChart, chart_pk, "reject", task=task, reason="; ".join(problems), problems=problems)
    except TransitionRefused:
        return False  # another worker (or a person) ended it first
    return True


def _advance(chart_pk: int, workdir: Path, task: str) -> str:
    chart = HelmChart.objects.filter(pk=chart_pk).first()
    if chart is None:  # deleted since the task was queued: nothing to do
        return "gone"
    if chart.state in (ChartState.INDEXED, ChartState.INVALID):
        return chart.state
    release = release_of(chart.app_version)
    report_progress(chart_pk, f"checking out {release.commit_sha[:12]}")
    source = checkout_source(release, workdir / "source")
    chart_dir = source / settings.CHART_PATH
    if not chart_dir.resolve().is_relative_to(source.resolve()):
        raise PipelineError(
            f"CHART_PATH {settings.CHART_PATH} resolves outside the repository (a symlink?); commit the chart "
            "as a real folder"
        )
    loaded = load_chart(chart_dir, expected_name=chart.name, expected_app_version=release.version)
    if chart.state == ChartState.VALIDATING:
        with metrics.timed("chart", "validate"):
            problems = validate(chart, loaded, chart_dir)
        if problems:
            reject_chart(chart_pk, problems, task=task)
            return ChartState.INVALID
        try:
            chart = fire_transition(HelmChart, chart_pk, "start_packaging", task=task)
        except TransitionRefused as refused:  # the images went away between validation and now
            reject_chart(chart_pk, refused.reasons, task=task)
            return ChartState.INVALID
    with metrics.timed("chart", "package"):
        packaged = package(chart, chart_dir)
    if chart.state == ChartState.PACKAGING:
        chart = fire_transition(
            HelmChart,
            chart_pk,
            "start_upload",
            task=task,
            changes={"package": packaged.data, "package_digest": packaged.digest, "size": packaged.size},
        )
    if chart.state == ChartState.UPLOADING:
        report_progress(chart_pk, f"uploading {chart.repository}:{chart.chart_version}")
        with metrics.timed("chart", "upload"), registry_client() as client:
            pushed = push_chart(client, chart.repository_path, packaged, loaded.metadata)
        metrics.BYTES_PUSHED.labels(kind="chart").inc(packaged.size)
        with transaction.atomic():
            chart = fire_transition(HelmChart, chart_pk, "mark_indexed", task=task, changes={"digest": pushed.digest})
            record_artifact(release, chart)
    return chart.state


def validate(chart: HelmChart, loaded: LoadedChart, chart_dir: Path) -> list[str]:
    """Every problem of the chart; only a chart without any has what was read (values, templates,
    dependencies) recorded."""
    problems = list(loaded.problems)
    if loaded.version and loaded.version != chart.chart_version:
        problems.append(
            f"Chart.yaml version is {loaded.version} but this chart record is {chart.chart_version}; "
            "bump Chart.yaml's version to match the release"
        )
    variables = [
        EnvVarSpec(v.name, v.required, v.secret, v.default_value, v.scope) for v in chart.environment_variables.all()
    ]
    problems += check_environment(loaded.values, variables)
    if not loaded.problems:
        report_progress(chart.pk, "rendering templates")
        try:
            documents = render_chart(settings.HELM_BIN, chart_dir, kube_version=settings.KUBERNETES_VERSION)
        except RenderFailed as error:
            problems.append(str(error))
        except FileNotFoundError:
            problems.append(f"helm is not installed at {settings.HELM_BIN}; run bin/install-helm or set HELM_BIN")
        else:
            problems += validate_manifests(documents, settings.KUBERNETES_VERSION)
    problems += chart.missing_app_images(require_available=True)
    if not problems:  # what a refused chart holds (a secret's value, say) is never stored or served
        with transaction.atomic():
            HelmChart.objects.filter(pk=chart.pk).update(
                values=loaded.values, templates=loaded.templates, description=loaded.description
            )
            chart.dependencies.all().delete()
            ChartDependency.objects.bulk_create(
                ChartDependency(
                    chart=chart, name=d.name, version=d.version, repository=d.repository, condition=d.condition
                )
                for d in loaded.dependencies
            )
    return problems


def package(chart: HelmChart, chart_dir: Path) -> PackagedChart:
    """The reproducible archive; a resumed upload must produce the bytes recorded before."""
    report_progress(chart.pk, "packaging")
    packaged = package_chart(chart_dir)
    if chart.package_digest and packaged.digest != chart.package_digest:
        raise PipelineError(
            f"packaging gave {packaged.digest}, not the recorded {chart.package_digest}; the source changed"
        )
    return packaged
