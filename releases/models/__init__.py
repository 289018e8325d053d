"""The spec's data model, one module per concept."""

from .audits import AuditFinding, AuditRun
from .base import StatefulModel, StateTransition
from .charts import ChartDependency, HelmChart
from .environment import EnvironmentVariable
from .generations import DataGeneration
from .images import DockerImage, ImmutableTagError, default_release_layout
from .latest import LatestTag
from .releases import ReleaseArtifact, ReleaseVersion
from .tokens import ApiToken
from .webhooks import GitHubDelivery
from .withdrawals import ReleaseWithdrawal, current_withdrawals

__all__ = [
    "ApiToken",
    "AuditFinding",
    "AuditRun",
    "ChartDependency",
    "DataGeneration",
    "DockerImage",
    "EnvironmentVariable",
    "GitHubDelivery",
    "HelmChart",
    "ImmutableTagError",
    "LatestTag",
    "ReleaseArtifact",
    "ReleaseVersion",
    "ReleaseWithdrawal",
    "StateTransition",
    "StatefulModel",
    "current_withdrawals",
    "default_release_layout",
]
