"""Logger, Tracer and Metrics: created once here, imported by every module and handler."""

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["logger", "metrics", "tracer"]

# Most requests emit no metric (a cache hit is the quiet case); Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
