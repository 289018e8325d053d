"""The Celery application: Redis broker, configuration from Django settings, tasks autodiscovered.

Workers log through Django's ``LOGGING`` (task id and subject on every line, secrets scrubbed,
``LOG_FORMAT``/``LOG_LEVEL``) instead of Celery's own set-up, which would replace the handlers.
"""

import os

from celery import Celery, signals

# The one exception to "settings read the environment": Celery must know which settings to load.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Connected, so Celery leaves logging alone; Django's ``LOGGING`` applies (``--loglevel`` does not)."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_process_shutdown.connect
def forget_metrics_of_exited_child(pid: int | None = None, **kwargs) -> None:
    """Multi-process metrics: a prefork child that exits leaves its live gauges behind otherwise."""
    from django.conf import settings

    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
