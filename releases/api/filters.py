"""Query filters of the list endpoints, and ``?ordering=version`` by semantic version."""

import django_filters
from rest_framework.filters import OrderingFilter

from ..choices import COMPONENT_BY_ARTIFACT_TYPE, ArtifactType, ChartState, EnvironmentScope, ImageState, ReleaseState
from ..models import AuditFinding, DockerImage, EnvironmentVariable, HelmChart, ReleaseVersion


class ReleaseFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=ReleaseState.choices)

    class Meta:
        model = ReleaseVersion
        fields = ["state"]


class StalledFilterMixin(django_filters.FilterSet):
    stalled = django_filters.BooleanFilter(method="filter_stalled", label="stalled (no progress while active)")

    def filter_stalled(self, queryset, name, value):
        stalled = queryset.stalled()
        return stalled if value else queryset.exclude(pk__in=stalled.values("pk"))


class DockerImageFilter(StalledFilterMixin):
    state = django_filters.MultipleChoiceFilter(choices=ImageState.choices)
    type = django_filters.ChoiceFilter(
        choices=[c for c in ArtifactType.choices if c[0] != ArtifactType.HELM_CHART],
        method="filter_type",
        label="artifact type",
    )

    class Meta:
        model = DockerImage
        fields = ["state", "name", "tag"]

    def filter_type(self, queryset, name, value):
        return queryset.filter(component=COMPONENT_BY_ARTIFACT_TYPE[value])


class HelmChartFilter(StalledFilterMixin):
    state = django_filters.MultipleChoiceFilter(choices=ChartState.choices)

    class Meta:
        model = HelmChart
        fields = ["state", "name", "chart_version", "app_version"]


class EnvironmentVariableFilter(django_filters.FilterSet):
    """Filters on everything but the value: a query naming ``default_value`` is refused (400), so no
    lookup can answer what a secret starts with."""

    scope = django_filters.ChoiceFilter(choices=EnvironmentScope.choices)

    class Meta:
        model = EnvironmentVariable
        fields = ["scope", "required", "secret", "name"]

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if any(key.partition("__")[0] == "default_value" for key in self.data):
            self.form.add_error(None, "values cannot be filtered on; filter by name, scope, required or secret")
            return False
        return valid


class AuditFindingFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", label="open")
    type = django_filters.ChoiceFilter(choices=AuditFinding.Type.choices)
    severity = django_filters.ChoiceFilter(choices=AuditFinding.Severity.choices)

    class Meta:
        model = AuditFinding
        fields = ["open", "type", "severity", "repository", "tag"]


class SemverOrderingFilter(OrderingFilter):
    """``?ordering=version`` sorts by semantic version (1.10.0 after 1.9.0), not by string: a view's
    ``ordering_aliases`` maps ``version`` to its database sort key."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        aliases = getattr(view, "ordering_aliases", {})
        return [self._alias(term, aliases) for term in ordering] if ordering else ordering

    @staticmethod
    def _alias(term: str, aliases: dict[str, str]) -> str:
        descending = term.startswith("-")
        field = aliases.get(term.lstrip("-"), term.lstrip("-"))
        return f"-{field}" if descending else field

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = set(getattr(view, "ordering_fields", []))
        return [term for term in fields if term.lstrip("-") in valid]
