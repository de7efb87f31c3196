"""Gateway benchmark (``python -m bench.gateway``)."""
