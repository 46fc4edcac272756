"""Which test endpoint serves a runtime (set by the endpoint when it starts)."""

from __future__ import annotations

import weakref

ENDPOINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def endpoint_of(runtime):
    """The running Device Advisor test endpoint of this server, or None."""
    return ENDPOINTS.get(runtime)
