"""The living document: opg-incident's read-only web pages on errbot's Flask app (an adapter over the
core). `/incidents`, `/incidents/<n>`, `/incidents/<n>.json`, `/incidents/<n>/rca.md`, `/stats`.
"""
from .routes import register_routes

__all__ = ["register_routes"]
