"""Checks on job and job template configurations that the service model does not state."""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services.jobs import schedule
from localiot.services.jobs.model import Limits


def document(text: str) -> str:
    if len(text.encode("utf-8")) > Limits.DOCUMENT_SIZE:
        raise invalid(f"The job document must be at most {Limits.DOCUMENT_SIZE} bytes.")
    return text


def timeout(config: dict | None) -> None:
    minutes = (config or {}).get("inProgressTimeoutInMinutes")
    low, high = Limits.TIMEOUT_MINUTES
    if minutes is not None and not low <= minutes <= high:
        raise invalid(f"inProgressTimeoutInMinutes must be between {low} and {high}.")


def retry(config: dict | None) -> None:
    criteria = (config or {}).get("criteriaList") or []
    types = [c["failureType"] for c in criteria]
    if len(set(types)) != len(types):
        raise invalid("jobExecutionsRetryConfig cannot list the same failureType twice.")
    if sum(c["numberOfRetries"] for c in criteria) > 10:
        raise invalid("A job execution can be retried at most 10 times for all failure types combined.")


def abort(config: dict | None) -> None:
    criteria = (config or {}).get("criteriaList") or []
    seen = set()
    for criterion in criteria:
        key = (criterion["failureType"], criterion["action"])
        if key in seen:
            raise invalid(f"abortConfig lists failureType {criterion['failureType']} twice.")
        seen.add(key)
        if criterion["thresholdPercentage"] < 0:
            raise invalid("thresholdPercentage must be between 0 and 100.")


def rollout(config: dict | None) -> None:
    exponential = (config or {}).get("exponentialRate")
    if exponential:
        criteria = exponential.get("rateIncreaseCriteria") or {}
        if not criteria.get("numberOfNotifiedThings") and not criteria.get("numberOfSucceededThings"):
            raise invalid("rateIncreaseCriteria needs numberOfNotifiedThings or numberOfSucceededThings.")


def configs(doc: dict, now: float) -> None:
    timeout(doc.get("timeoutConfig"))
    retry(doc.get("jobExecutionsRetryConfig"))
    abort(doc.get("abortConfig"))
    rollout(doc.get("jobExecutionsRolloutConfig"))
    for window in doc.get("maintenanceWindows") or []:
        schedule.Cron(window["startTime"])
    if doc.get("schedulingConfig"):
        doc["schedulingConfig"] = schedule.validate(doc["schedulingConfig"], now)
