"""The living document: opg-incident's read-only web pages on errbot's Flask app (an adapter over the
core). `/incidents`, `/incidents/<n>`, `/incidents/<n>.json`, `/incidents/<n>/rca.md`, `/stats`.
"""
from .routes import register_routes
from .server import start_web_server

__all__ = ["register_routes", "start_web_server"]
