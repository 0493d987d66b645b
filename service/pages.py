"""The map page (``/map``): the levels with toggles, feature properties on click, a route overlay.

Placeholder blueprint until the map page lands; registered by :func:`service.create_app`.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
