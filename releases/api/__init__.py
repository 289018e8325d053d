"""The REST API (DRF) under ``/api/v1/``: declarations here, behaviour in ``releases.services``."""
