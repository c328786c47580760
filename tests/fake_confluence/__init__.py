"""A stand-in for Confluence's REST API v1 on loopback (real HTTP), for tests."""
from .server import FakeConfluence

__all__ = ["FakeConfluence"]
