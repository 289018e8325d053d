"""gunicorn settings for production: ``gunicorn -c registry/gunicorn_conf.py registry.wsgi``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, each gunicorn worker writes its metrics to files there and
``/metrics`` (any worker) adds them up; a worker that exits is marked dead here. Other options come
from the command line or ``GUNICORN_CMD_ARGS`` (``--bind``, ``--workers``).
"""

import os

# gunicorn's master imports this file before the application: point it at the settings too.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

# Behind the TLS proxy: trust its X-Forwarded-* headers (SECURE_PROXY_SSL_HEADER reads the proto).
forwarded_allow_ips = "*"
accesslog = "-"


def child_exit(server, worker) -> None:
    from django.conf import settings  # the app is loaded in the workers, so settings import here
    from prometheus_client import multiprocess

    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(worker.pid, settings.PROMETHEUS_MULTIPROC_DIR)
