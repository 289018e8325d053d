"""What operators watch: readiness checks (``health``), Prometheus metrics (``metrics``), the
context on every log line (``logcontext``), and the scrubbing of secrets and host paths from
everything people and logs see (``redaction``, plain Python)."""
