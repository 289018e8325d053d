"""The Helm chart repository this service serves: ``index.yaml`` (cached per chart generation) and
the ``.tgz`` of every indexed chart, for ``helm repo add``."""
