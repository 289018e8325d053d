from tests.pipeline.test_chart_pipeline import chart_source  # noqa: F401  (the fixture, shared)
