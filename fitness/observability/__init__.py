"""What an operator sees: ``/metrics`` (Prometheus), request ids, JSON log lines.

See docs/operations.md ("Metrics and logs") for the metrics, how worker measurements reach
the scrape (the database) and what to alert on.
"""
