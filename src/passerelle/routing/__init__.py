"""Routing: model aliases to deployments, retries, fallbacks and circuit breakers."""
