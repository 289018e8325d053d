"""The Celery application: Redis broker, configuration from Django settings, tasks autodiscovered."""

import os

from celery import Celery

# The one exception to "settings read the environment": Celery must know which settings to load.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
