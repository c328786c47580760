"""The living document: opg-incident's read-only web pages (an adapter over the core), served by the bot's
own web server. `/incidents`, `/incidents/<n>`, `/incidents/<n>.json`, `/incidents/<n>/rca.md`, `/stats`.
"""
from .routes import register_routes
from .server import register_slack_http, start_web_server, web_app

__all__ = ["register_routes", "register_slack_http", "start_web_server", "web_app"]
