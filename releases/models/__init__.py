"""The spec's data model, one module per concept."""

from .base import StatefulModel, StateTransition
from .charts import ChartDependency, HelmChart
from .environment import EnvironmentVariable
from .images import DockerImage, ImmutableTagError
from .releases import ReleaseArtifact, ReleaseVersion

__all__ = [
    "ChartDependency",
    "DockerImage",
    "EnvironmentVariable",
    "HelmChart",
    "ImmutableTagError",
    "ReleaseArtifact",
    "ReleaseVersion",
    "StateTransition",
    "StatefulModel",
]
