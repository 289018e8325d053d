from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from releases.api import admission
from releases.api.metrics import metrics_view
from releases.github.webhook import github_webhook

admin.site.site_header = "Release registry"
admin.site.site_title = "Release registry"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("releases.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("hooks/github/", github_webhook, name="github-webhook"),
    path("admission/validate/", admission.validate, name="admission-validate"),
    path("admission/mutate/", admission.mutate, name="admission-mutate"),
    path("charts/", include("releases.chart_repository.urls")),
    path("metrics", metrics_view, name="metrics"),
]
