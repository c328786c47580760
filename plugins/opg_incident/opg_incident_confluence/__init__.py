"""opg-incident's Confluence adapter: `rca publish` puts the root-cause analysis on a Confluence page
(REST API v1, Cloud and Data Center, through atlassian-python-api) and keeps it in step."""
from .adapter import KIND, ConfluenceAdapter
from .client import ConfluenceClient, ConfluenceError
from .target import Target

__all__ = ["KIND", "ConfluenceAdapter", "ConfluenceClient", "ConfluenceError", "Target"]
