from django.urls import path, re_path

from . import views

urlpatterns = [
    path("index.yaml", views.chart_repository_index, name="chart-index"),
    re_path(
        r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*)-(?P<version>\d+\.\d+\.\d+[0-9A-Za-z.+-]*)\.tgz$",
        views.chart_package,
        name="chart-package",
    ),
]
