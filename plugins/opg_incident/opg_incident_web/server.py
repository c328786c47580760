"""errbot's Webserver core plugin, configured from INCIDENT_WEB_PORT / INCIDENT_WEB_HOST and started: it
serves errbot's Flask app (the living document, and Slack's HTTP endpoints in HTTP mode)."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def start_web_server(manager, config) -> None:
    port = getattr(config, "INCIDENT_WEB_PORT", None)
    if not port:
        return
    host = getattr(config, "INCIDENT_WEB_HOST", "127.0.0.1")
    wanted = {"HOST": host, "PORT": int(port),
              "SSL": {"enabled": False, "host": host, "port": int(port) + 1, "certificate": "", "key": ""}}
    webserver = manager.get_plugin_obj_by_name("Webserver")
    if webserver is None:
        log.warning("The Webserver core plugin is not loaded: no web pages, no Slack HTTP endpoints.")
        return
    if manager.get_plugin_configuration("Webserver") != wanted:
        manager.set_plugin_configuration("Webserver", wanted)
        _flush_storage(manager)
        if webserver.is_activated:
            manager.deactivate_plugin("Webserver")
    if not webserver.is_activated:
        manager.activate_plugin("Webserver")


def _flush_storage(store) -> None:
    """Write errbot's own storage to disk now. Its Shelf (dbm.dumb) keeps the index of a changed value
    in memory until a clean close, and errbot never closes it on SIGTERM or SIGKILL: the next start
    then fails on a truncated pickle (`configs`) and the bot cannot start again."""
    shelf = getattr(getattr(store, "_store", None), "shelf", None)
    if shelf is not None and hasattr(shelf, "sync"):
        shelf.sync()
