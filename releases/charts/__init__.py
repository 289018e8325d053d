"""The Helm-chart side of the release pipeline, in plain Python (no Django imports).

* :func:`load_chart` - read a chart directory and list every problem (:mod:`.chartfile`), within
  :class:`ChartLimits`;
* :func:`chart_path_problems` - the symbolic links and special files a chart may not hold
  (:mod:`.confine`);
* :func:`render_chart` / :func:`validate_manifests` - ``helm template`` and offline Kubernetes
  schema validation (:mod:`.render`);
* :func:`build_dependencies` - ``helm dependency build`` pinned by Chart.lock (:mod:`.dependencies`),
  only from the hosts :class:`DependencyHosts` allows (:mod:`.hosts`);
* :func:`lint_chart` - ``helm lint --strict`` findings (:mod:`.lint`);
* :func:`check_environment` - the env-var convention of the chart's values (:mod:`.environment`);
* :func:`deployed_images` / :func:`deployed_image_problems` - the images rendered manifests would
  run, against what a release published (:mod:`.images`);
* :func:`pin_values` - values.yaml pointing at the pushed images by digest (:mod:`.pinning`);
* :func:`package_chart` - a reproducible chart .tgz (:mod:`.package`);
* :func:`push_chart` - the chart as an OCI artifact, immutable per version (:mod:`.oci`);
* :func:`render_index` - a Helm repository ``index.yaml`` (:mod:`.repo_index`).
"""

from releases.charts.chartfile import INDEX_METADATA_FIELDS, ChartDependency, ChartLimits, LoadedChart, load_chart
from releases.charts.confine import chart_path_problems
from releases.charts.dependencies import DependencyBuild, LockedDependency, build_dependencies, helm_environment
from releases.charts.environment import EnvVarSpec, check_environment, mask_secret_values
from releases.charts.helmignore import IgnoreRules, IgnoreSyntaxError, chart_files
from releases.charts.hosts import DependencyHosts, HostPattern
from releases.charts.images import (
    DeployedImage,
    ImageReference,
    PublishedImage,
    deployed_image_problems,
    deployed_images,
)
from releases.charts.lint import lint_chart, lint_findings
from releases.charts.oci import PushedChart, build_chart_manifest, chart_annotations, oci_tag, push_chart
from releases.charts.package import ChartPackageError, PackagedChart, package_chart
from releases.charts.pinning import ImagePin, PinnedValues, pin_values
from releases.charts.render import (
    DEFAULT_KUBERNETES_VERSION,
    RenderFailed,
    bundled_kubernetes_versions,
    render_chart,
    schema_version_for,
    validate_manifests,
)
from releases.charts.repo_index import IndexEntry, render_index

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "INDEX_METADATA_FIELDS",
    "ChartDependency",
    "ChartLimits",
    "ChartPackageError",
    "DeployedImage",
    "ImagePin",
    "ImageReference",
    "PinnedValues",
    "PublishedImage",
    "DependencyBuild",
    "DependencyHosts",
    "HostPattern",
    "LockedDependency",
    "EnvVarSpec",
    "mask_secret_values",
    "IgnoreRules",
    "IgnoreSyntaxError",
    "IndexEntry",
    "LoadedChart",
    "PackagedChart",
    "PushedChart",
    "RenderFailed",
    "build_chart_manifest",
    "build_dependencies",
    "bundled_kubernetes_versions",
    "chart_annotations",
    "chart_files",
    "chart_path_problems",
    "check_environment",
    "deployed_image_problems",
    "deployed_images",
    "helm_environment",
    "lint_chart",
    "lint_findings",
    "load_chart",
    "oci_tag",
    "package_chart",
    "pin_values",
    "push_chart",
    "render_chart",
    "render_index",
    "schema_version_for",
    "validate_manifests",
]
