"""End-to-end tests share the integration tests' model and Triton fixtures and the pipeline's
`kafka_run`; importing them here is how pytest shares fixtures across test folders."""

from tests.e2e.test_pipeline import kafka_run  # noqa: F401
from tests.integration.conftest import tiny_checkpoint_path, tiny_model, triton, triton_repository  # noqa: F401
