"""The test cases' implementations, by AWS test id (localiot.advisor.catalog)."""

from __future__ import annotations

from localiot.advisor.cases import backoff, longrun, mqtt, services, tls
from localiot.advisor.cases.base import CaseFailed, CaseRun

__all__ = ["CaseFailed", "CaseRun", "implementation"]

IMPLEMENTATIONS = {**tls.CASES, **mqtt.CASES, **backoff.CASES, **services.CASES, **longrun.CASES}


def implementation(test_id: str):
    return IMPLEMENTATIONS.get(test_id)
