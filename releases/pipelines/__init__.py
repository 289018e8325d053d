"""The work the Celery workers do, one module per pipeline.

``images`` (build, scan, push one ``DockerImage``), ``charts`` (validate, package, upload one
``HelmChart``), ``releases`` (a release's images then its chart), ``audit`` (every published tag
against the registry), ``stalled`` (the sweeper: active work with no progress is resumed or
failed). They move rows only through ``releases.transitions`` and never enqueue
work: the tasks in ``releases.tasks`` do.
"""
