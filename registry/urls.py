from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from releases import views, webhooks

admin.site.site_header = "Release registry"
admin.site.site_title = "Release registry"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("releases.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("hooks/github/", webhooks.github_webhook, name="github-webhook"),
    path("charts/index.yaml", views.chart_repository_index, name="chart-index"),
    re_path(
        r"^charts/(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*)-(?P<version>\d+\.\d+\.\d+[0-9A-Za-z.+-]*)\.tgz$",
        views.chart_package,
        name="chart-package",
    ),
]
