"""Touchstream: real-time marketing touchpoint attribution on Kafka, Faust and Redis."""

__version__ = "0.1.0"
