"""Logger, Tracer and Metrics: created once here, imported by every module and handler."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
