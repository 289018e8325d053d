from django.urls import path
from rest_framework.routers import DefaultRouter

from . import verify, views

router = DefaultRouter()
router.register("releases", views.ReleaseViewSet, basename="release")
router.register("images", views.DockerImageViewSet, basename="image")
router.register("charts", views.HelmChartViewSet, basename="chart")
router.register("audits", views.AuditRunViewSet, basename="audit-run")
router.register("audit-findings", views.AuditFindingViewSet, basename="audit-finding")
router.register("environment-variables", views.EnvironmentVariableViewSet, basename="environment-variable")

urlpatterns = [
    path("health/", views.HealthView.as_view(), name="health"),
    path("health/ready/", views.ReadinessView.as_view(), name="readiness"),
    path("changelog/", views.ChangelogBetweenView.as_view(), name="changelog-between"),
    path("signing/keys/", views.SigningKeysView.as_view(), name="signing-keys"),
    path("signing/cosign.pub", views.SigningPublicKeyView.as_view(), name="signing-public-key"),
    path("verify/", verify.VerifyView.as_view(), name="verify"),
    *router.urls,
]
