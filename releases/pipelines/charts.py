"""One ``HelmChart`` from ``validating`` to ``indexed``: validate, package, upload; resumable.

The chart is read from the release's layout (``.release-registry.yaml`` ``chart.path``), and its
values.yaml is first pinned: each component with a ``values`` path gets the image this release
pushed, by digest, so the rendered, validated and packaged chart all deploy exactly that.
Validation lists every problem (Chart.yaml, values schema, dependencies pinned by Chart.lock and
fetched with ``helm dependency build``, rendered manifests against the Kubernetes schemas, the
images the manifests would run, ``helm lint --strict``, environment variables, images of
``app_version`` available) and a chart with any problem ends ``invalid`` without a byte pushed.
Packaging is reproducible, so a resumed upload sends the same archive, and the same immutability
guard as images refuses a chart version that already holds other content.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction

from releases.adapters.registry_client import registry_client, split_location
from releases.database.locks import CHART_LOCK, exclusive
from releases.observability import metrics
from releases.observability.logcontext import log_context

from ..charts import (
    ChartPackageError,
    DependencyBuild,
    EnvVarSpec,
    ImagePin,
    LoadedChart,
    PackagedChart,
    PinnedValues,
    PublishedImage,
    RenderFailed,
    check_environment,
    deployed_image_problems,
    deployed_images,
    load_chart,
    package_chart,
    pin_values,
    push_chart,
    render_chart,
    validate_manifests,
)
from ..charts import build_dependencies as helm_dependency_build
from ..charts import lint_chart as helm_lint
from ..charts.chartfile import MAX_VALUES_BYTES, VALUES_FILE
from ..charts.chartfile import ChartDependency as DeclaredDependency
from ..choices import ChartState, ImageState
from ..layout import ReleaseLayout
from ..models import ChartDependency, HelmChart, ReleaseVersion
from ..oci import RegistryError, RegistryUnavailable
from ..signing import SigningError
from ..transitions import TransitionRefused, fire_transition, record_artifact
from . import progress
from .errors import PipelineBusy, PipelineError, refusal_reason, reraise_time_limit
from .signing import UNSIGNED, SigningRecord, sign_pushed_chart
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
        except (PipelineError, RegistryError, ChartPackageError, SigningError, OSError) as error:
            reraise_time_limit(error)
            problem = refusal_reason(error)
            reject_chart(chart_pk, [problem], task=task)
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
    layout = release.effective_layout()
    report_progress(chart_pk, f"checking out {release.commit_sha[:12]}")
    source = checkout_source(release, workdir / "source")
    chart_dir = source / layout.chart_path
    if not chart_dir.resolve().is_relative_to(source.resolve()):
        raise PipelineError(
            f"the chart path {layout.chart_path} ({layout.source}) resolves outside the repository (a symlink?); "
            "commit the chart as a real folder"
        )
    pinned = pin_chart_values(chart_dir, release, layout)
    loaded = load_chart(chart_dir, expected_name=chart.name, expected_app_version=release.version)
    if chart.state == ChartState.VALIDATING:
        with metrics.timed("chart", "validate"):
            problems = [*pinned.problems, *loaded.problems] if pinned.problems else validate(chart, loaded, chart_dir)
        if problems:
            reject_chart(chart_pk, problems, task=task)
            return ChartState.INVALID
        try:
            chart = fire_transition(
                HelmChart, chart_pk, "start_packaging", task=task, changes={"image_pins": pinned.pins}
            )
        except TransitionRefused as refused:  # the images went away between validation and now
            reject_chart(chart_pk, refused.reasons, task=task)
            return ChartState.INVALID
    else:  # resumed: this fresh checkout needs the validated dependencies in charts/ again
        rebuild_dependencies(chart, loaded, chart_dir)
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
        signed: list[SigningRecord] = []
        with metrics.timed("chart", "upload"), registry_client() as client:
            pushed = push_chart(
                client,
                chart.repository_path,
                packaged,
                loaded.metadata,
                before_tag=lambda ref: signed.append(sign_pushed_chart(client, chart, ref)),
            )
        metrics.BYTES_PUSHED.labels(kind="chart").inc(packaged.size)
        signing = signed[-1] if signed else UNSIGNED
        changes = {"digest": pushed.digest, **signing.changes(with_provenance=False)}
        with transaction.atomic():
            chart = fire_transition(HelmChart, chart_pk, "mark_indexed", task=task, changes=changes)
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
    dependencies = DependencyBuild()
    if not loaded.problems:
        dependencies = build_dependencies(chart, loaded, chart_dir)
        problems += dependencies.problems
    if not loaded.problems and not dependencies.problems:
        report_progress(chart.pk, "rendering templates")
        try:
            documents = render_chart(settings.HELM_BIN, chart_dir, kube_version=settings.KUBERNETES_VERSION)
        except RenderFailed as error:
            problems.append(str(error))
        except FileNotFoundError:
            problems.append(f"helm is not installed at {settings.HELM_BIN}; run bin/install-helm or set HELM_BIN")
        else:
            problems += validate_manifests(documents, settings.KUBERNETES_VERSION)
            problems += check_deployed_images(chart, documents)
        problems += lint_chart(chart, chart_dir)
    problems += chart.missing_app_images(require_available=True)
    if not problems:  # what a refused chart holds (a secret's value, say) is never stored or served
        with transaction.atomic():
            HelmChart.objects.filter(pk=chart.pk).update(
                values=loaded.values,
                templates=loaded.templates,
                description=loaded.description,
                chart_metadata=loaded.index_metadata,
            )
            chart.dependencies.all().delete()
            ChartDependency.objects.bulk_create(_dependency_row(chart, d, dependencies) for d in loaded.dependencies)
    return problems


def pin_chart_values(chart_dir: Path, release: ReleaseVersion, layout: ReleaseLayout) -> PinnedValues:
    """Rewrite the checkout's values.yaml so every component with a ``values`` path in the layout
    deploys the image this release pushed, by digest (``releases.charts.pinning``).

    The same release gives the same bytes, so a resumed packaging reproduces the recorded archive.
    A values.yaml that is missing, a link, too big or not UTF-8 is left to ``load_chart`` to report.
    """
    components = [planned for planned in layout.images if planned.values]
    values_file = chart_dir / VALUES_FILE
    if not components or values_file.is_symlink() or not values_file.is_file():
        return PinnedValues("")
    if values_file.stat().st_size > MAX_VALUES_BYTES:
        return PinnedValues("")
    try:
        text = values_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return PinnedValues("")
    images = {image.name: image for image in release.images()}
    pins, problems = [], []
    for planned in components:
        image = images.get(planned.name)
        if image is None or not image.digest:
            problems.append(
                f"image {planned.name}:{release.version} has no pushed digest to pin {planned.values} to; "
                "publish the images first"
            )
            continue
        pins.append(ImagePin(planned.component, planned.values, image.repository, image.tag, image.digest))
    if problems:
        return PinnedValues(text, problems=problems)
    pinned = pin_values(text, pins)
    if not pinned.problems and pinned.text != text:
        values_file.write_text(pinned.text, encoding="utf-8")
    return pinned


def check_deployed_images(chart: HelmChart, documents: list[dict]) -> list[str]:
    """The problems of the images the rendered ``documents`` would run: under ``REGISTRY_NAMESPACE``
    only this release's images, at its version or digest. Images outside the namespace and not in
    ``CHART_ALLOWED_IMAGES`` are recorded as the chart's warnings."""
    release = release_of(chart.app_version)
    published = [
        PublishedImage(image.repository, image.tag, image.digest)
        for image in release.images().filter(state=ImageState.AVAILABLE).order_by("name")
    ]
    problems, warnings = deployed_image_problems(
        deployed_images(documents),
        namespace=settings.REGISTRY_NAMESPACE,
        published=published,
        allowed=settings.CHART_ALLOWED_IMAGES,
    )
    HelmChart.objects.filter(pk=chart.pk).update(warnings=warnings)
    return problems


def _dependency_row(chart: HelmChart, declared: DeclaredDependency, dependencies: DependencyBuild) -> ChartDependency:
    locked = dependencies.locked_as(declared.name)
    return ChartDependency(
        chart=chart,
        name=declared.name,
        version=declared.version,
        repository=declared.repository,
        condition=declared.condition,
        locked_version=locked.version if locked else "",
        archive_digest=locked.archive_digest if locked else "",
        lock_digest=dependencies.lock_digest,
    )


def _helm_home(chart: HelmChart) -> Path:
    """helm's cache, configuration and logins for this chart's run, removed with its workdir."""
    return Path(settings.BUILD_WORKDIR) / f"chart-{chart.pk}" / "helm-home"


def build_dependencies(chart: HelmChart, loaded: LoadedChart, chart_dir: Path) -> DependencyBuild:
    """Fetch the dependencies Chart.lock pins into ``charts/`` (``helm dependency build`` against the
    declared OCI and HTTP repositories); its problems name the dependency or Chart.lock to fix.

    Only from the hosts ``CHART_DEPENDENCY_HOSTS`` lists or, without it, from public hosts and the
    ones the operator already trusts: the registry of ``REGISTRY_NAMESPACE`` and
    ``REGISTRY_INSECURE_HOSTS`` (``releases.charts.hosts``)."""
    if loaded.dependencies:
        report_progress(chart.pk, f"fetching {len(loaded.dependencies)} dependencies")
    return helm_dependency_build(
        settings.HELM_BIN,
        chart_dir,
        loaded.dependencies,
        helm_home=_helm_home(chart),
        insecure_hosts=settings.REGISTRY_INSECURE_HOSTS,
        allowed_hosts=settings.CHART_DEPENDENCY_HOSTS,
        trusted_hosts=[split_location(settings.REGISTRY_NAMESPACE)[0], *settings.REGISTRY_INSECURE_HOSTS],
    )


def rebuild_dependencies(chart: HelmChart, loaded: LoadedChart, chart_dir: Path) -> None:
    """Fetch again, for a resumed packaging, the dependencies validation recorded; refuses
    (``PipelineError``) a dependency whose archive is no longer the one validated."""
    if not loaded.dependencies:
        return
    dependencies = build_dependencies(chart, loaded, chart_dir)
    if dependencies.problems:
        raise PipelineError("; ".join(dependencies.problems))
    for recorded in chart.dependencies.exclude(archive_digest=""):
        locked = dependencies.locked_as(recorded.name)
        if locked is None or locked.archive_digest != recorded.archive_digest:
            raise PipelineError(
                f"dependency {recorded.name} {recorded.locked_version} was validated as {recorded.archive_digest} "
                f"but its repository now serves {locked.archive_digest if locked else 'nothing'}; publish a new "
                "chart version"
            )


def lint_chart(chart: HelmChart, chart_dir: Path) -> list[str]:
    """``helm lint --strict`` findings (warnings and errors), each one a problem of the chart."""
    report_progress(chart.pk, "linting")
    return helm_lint(
        settings.HELM_BIN, chart_dir, kube_version=settings.KUBERNETES_VERSION, helm_home=_helm_home(chart)
    )


def package(chart: HelmChart, chart_dir: Path) -> PackagedChart:
    """The reproducible archive; a resumed upload must produce the bytes recorded before."""
    report_progress(chart.pk, "packaging")
    packaged = package_chart(chart_dir)
    if chart.package_digest and packaged.digest != chart.package_digest:
        raise PipelineError(
            f"packaging gave {packaged.digest}, not the recorded {chart.package_digest}; the source changed"
        )
    return packaged
