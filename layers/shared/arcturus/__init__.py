"""Arcturus-Prime's shared Lambda layer: what the Workers runtime gave the original handlers, on AWS."""
