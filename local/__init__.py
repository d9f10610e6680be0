"""The Docker-free local runtime: template.yaml served on this machine (``python -m local ...``).

Never deployed. It plays the parts AWS plays in production: an embedded AWS endpoint (moto) holding the
template's resources, API Gateway's HTTP API with its JWT authorizer, Lambda's execution environments
(``awslambdaric`` against a local Runtime API), and EventBridge's schedules.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The project directory: template.yaml, functions/ and layers/ are found from here."""


class LocalError(RuntimeError):
    """A failure the user can act on: ``python -m local`` prints it without a traceback."""
