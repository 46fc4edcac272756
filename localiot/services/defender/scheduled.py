"""Scheduled audits: DAILY, WEEKLY (dayOfWeek), BIWEEKLY (dayOfWeek), MONTHLY
(dayOfMonth 1-31 or LAST; a day the month lacks means its last day). A
scheduled audit runs at 00:00 UTC of each day it names, on the injectable
clock: the `@periodic("defender-scheduled-audits")` job starts a
SCHEDULED_AUDIT_TASK for every schedule whose time has come (once, however
many runs a jump of the clock skipped) and sets its next run.

Kind "scheduled-audit" (name = scheduledAuditName): the API fields plus
`nextRunAt` (epoch seconds).
"""

from __future__ import annotations

import calendar
import datetime as dt

from localiot.background import periodic
from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import Resource, paginate, tags_to_dict
from localiot.services.defender import configuration
from localiot.services.defender.audits import start_task
from localiot.services.unit_of_work import unit_of_work

SCHEDULED = Resource("scheduled-audit", "scheduledaudit/{name}",
                     not_found="Scheduled audit {name} does not exist.",
                     exists="Scheduled audit {name} already exists.", arn_field="scheduledAuditArn", taggable=True)
DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _midnight(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_day(year: int, month: int, day_of_month: str) -> dt.datetime:
    last = calendar.monthrange(year, month)[1]
    day = last if day_of_month == "LAST" else min(int(day_of_month), last)
    return dt.datetime(year, month, day, tzinfo=dt.timezone.utc)


def next_run(doc: dict, after: float) -> float:
    """The first run time of the schedule strictly after `after`."""
    now = dt.datetime.fromtimestamp(after, dt.timezone.utc)
    day = _midnight(now) + dt.timedelta(days=1)
    frequency = doc["frequency"]
    if frequency == "DAILY":
        return day.timestamp()
    if frequency in ("WEEKLY", "BIWEEKLY"):
        target = DAYS.index(doc["dayOfWeek"])
        day += dt.timedelta(days=(target - day.weekday()) % 7)
        return day.timestamp()
    candidate = _month_day(now.year, now.month, doc["dayOfMonth"])
    if candidate.timestamp() <= after:
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        candidate = _month_day(year, month, doc["dayOfMonth"])
    return candidate.timestamp()


def _schedule_fields(req: dict, base: dict | None = None) -> dict:
    doc = dict(base or {})
    for key in ("frequency", "dayOfMonth", "dayOfWeek"):
        if req.get(key) is not None:
            doc[key] = req[key]
    frequency = doc.get("frequency")
    if req.get("frequency") is not None and base is not None:
        # a new frequency drops the day fields it does not use
        if frequency != "MONTHLY" and "dayOfMonth" not in req:
            doc.pop("dayOfMonth", None)
        if frequency not in ("WEEKLY", "BIWEEKLY") and "dayOfWeek" not in req:
            doc.pop("dayOfWeek", None)
    if frequency == "DAILY" and (doc.get("dayOfWeek") or doc.get("dayOfMonth")):
        raise invalid("A DAILY scheduled audit takes neither dayOfWeek nor dayOfMonth.")
    if frequency in ("WEEKLY", "BIWEEKLY"):
        if not doc.get("dayOfWeek"):
            raise invalid(f"A {frequency} scheduled audit needs dayOfWeek.")
        if doc.get("dayOfMonth"):
            raise invalid(f"A {frequency} scheduled audit does not take dayOfMonth.")
    if frequency == "MONTHLY":
        if not doc.get("dayOfMonth"):
            raise invalid("A MONTHLY scheduled audit needs dayOfMonth.")
        if doc.get("dayOfWeek"):
            raise invalid("A MONTHLY scheduled audit does not take dayOfWeek.")
    return doc


def _checks(ctx, names: list[str]) -> list[str]:
    if not names:
        raise invalid("targetCheckNames must name at least one check.")
    configuration.require_enabled(ctx.tx, names)
    return sorted(set(names))


@operation("iot")
def CreateScheduledAudit(ctx, req):
    name = req["scheduledAuditName"]
    SCHEDULED.ensure_absent(ctx, name)
    doc = _schedule_fields(req)
    doc.update(scheduledAuditName=name, scheduledAuditArn=SCHEDULED.arn(ctx, name),
               targetCheckNames=_checks(ctx, req["targetCheckNames"]))
    doc["nextRunAt"] = next_run(doc, ctx.now())
    SCHEDULED.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return {"scheduledAuditArn": doc["scheduledAuditArn"]}


def _public(doc: dict) -> dict:
    keys = ("frequency", "dayOfMonth", "dayOfWeek", "targetCheckNames", "scheduledAuditName", "scheduledAuditArn")
    return {k: doc[k] for k in keys if doc.get(k) is not None}


@operation("iot")
def DescribeScheduledAudit(ctx, req):
    return _public(SCHEDULED.get(ctx, req["scheduledAuditName"]))


@operation("iot")
def UpdateScheduledAudit(ctx, req):
    name = req["scheduledAuditName"]
    doc = _schedule_fields(req, SCHEDULED.get(ctx, name))
    if req.get("targetCheckNames") is not None:
        doc["targetCheckNames"] = _checks(ctx, req["targetCheckNames"])
    doc["nextRunAt"] = next_run(doc, ctx.now())
    SCHEDULED.put(ctx, name, doc)
    return {"scheduledAuditArn": doc["scheduledAuditArn"]}


@operation("iot")
def DeleteScheduledAudit(ctx, req):
    SCHEDULED.get(ctx, req["scheduledAuditName"])
    SCHEDULED.delete(ctx, req["scheduledAuditName"])
    return {}


@operation("iot")
def ListScheduledAudits(ctx, req):
    rows = SCHEDULED.list(ctx)
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0])
    return {"scheduledAudits": [{k: d[k] for k in ("scheduledAuditName", "scheduledAuditArn", "frequency",
                                                     "dayOfMonth", "dayOfWeek") if d.get(k)} for _, d in found],
            **extra}


@periodic("defender-scheduled-audits")
def run_due(store, runtime) -> None:
    now = runtime.clock.now()
    for account, region, name, doc in store.scan_all_scopes(SCHEDULED.kind):
        if doc.get("nextRunAt", now + 1) > now:
            continue
        with unit_of_work(runtime, account, region, "iot", "ScheduledAudit") as ctx:
            doc = ctx.tx.get(SCHEDULED.kind, name)
            if doc is None or doc["nextRunAt"] > now:
                continue
            enabled = set(configuration.enabled_checks(ctx.tx))
            checks = [c for c in doc["targetCheckNames"] if c in enabled]
            if checks:
                start_task(ctx, checks, "SCHEDULED_AUDIT_TASK", name)
            step = 14 * 86400 if doc["frequency"] == "BIWEEKLY" else 0
            doc["nextRunAt"] = max(doc["nextRunAt"] + step, next_run(doc, now)) if step else next_run(doc, now)
            SCHEDULED.put(ctx, name, doc)
