"""SchedulingConfig: start and end times, end behaviours and recurring
maintenance windows written as AWS cron expressions.

Times are the API's StringDateTime, `YYYY-MM-DDTHH:MM` (seconds and a UTC
offset or `Z` are accepted too; without one the time is UTC). A maintenance
window's startTime is `cron(Minutes Hours Day-of-month Month Day-of-week Year)`
as in EventBridge: `*`, `?`, lists, ranges, `/` steps, JAN-DEC and SUN-SAT
(day-of-week 1 is Sunday). Everything here is a pure function of the
config and `now`, so the timer is deterministic.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from localiot.protocol.errors import invalid

MIN_LEAD = 30 * 60  # startTime / endTime at least thirty minutes ahead
SLACK = 60  # a time given to the minute may fall up to a minute short
YEAR = 366 * 24 * 3600
UPCOMING = 7


def parse_time(text: str, field: str = "startTime") -> float:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"The {field} {text} is not a valid date and time; use YYYY-MM-DDTHH:MM.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M")


# cron --------------------------------------------------------------------------
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS = (("minutes", 0, 59, {}), ("hours", 0, 23, {}), ("day-of-month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, {}))


class Cron:
    def __init__(self, expression: str):
        self.expression = expression
        text = expression.strip()
        match = re.fullmatch(r"cron\((.*)\)", text)
        if match:
            text = match.group(1)
        parts = text.split()
        if len(parts) != 6:
            raise invalid(f"Invalid maintenance window startTime {expression}: a cron expression has six fields.")
        self.sets: list[set[int] | None] = []
        for part, (name, low, high, names) in zip(parts, _FIELDS):
            self.sets.append(_field(part, low, high, names, name, expression))
        dom, dow = parts[2], parts[4]
        if (dom == "?") == (dow == "?"):
            raise invalid(f"Invalid maintenance window startTime {expression}: "
                          "exactly one of day-of-month and day-of-week must be '?'.")

    def _day_matches(self, day: datetime) -> bool:
        _, _, dom, month, dow, year = self.sets
        aws_dow = (day.weekday() + 1) % 7 + 1  # Monday=0 -> 2, Sunday=6 -> 1
        return ((month is None or day.month in month) and (year is None or day.year in year)
                and (dom is None or day.day in dom) and (dow is None or aws_dow in dow))

    def after(self, start: float, limit_days: int = 800):
        """Occurrences at or after `start` (epoch seconds), in order."""
        minutes = sorted(self.sets[0] or range(60))
        hours = sorted(self.sets[1] or range(24))
        origin = datetime.fromtimestamp(start, timezone.utc)
        day = origin.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(limit_days):
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        moment = day.replace(hour=hour, minute=minute)
                        if moment.timestamp() >= start:
                            yield moment.timestamp()
            day += timedelta(days=1)


def _field(part: str, low: int, high: int, names: dict, name: str, expression: str) -> set[int] | None:
    if part in ("*", "?"):
        return None
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.upper()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise invalid(f"Invalid maintenance window startTime {expression}: bad {name} value {token}.")
        value = int(token)
        if not low <= value <= high:
            raise invalid(f"Invalid maintenance window startTime {expression}: {name} {value} out of range.")
        return value

    for item in part.split(","):
        base, _, step = item.partition("/")
        if base in ("*", ""):
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = number(a), number(b)
        else:
            first = number(base)
            last = high if step else first
        stride = int(step) if step.isdigit() and int(step) > 0 else (1 if not step else None)
        if stride is None:
            raise invalid(f"Invalid maintenance window startTime {expression}: bad step in {item}.")
        values.update(range(first, last + 1, stride))
    return values


# scheduling configs ------------------------------------------------------------
def validate(config: dict | None, now: float) -> dict | None:
    """Check a SchedulingConfig as CreateJob does; returns it with endBehavior defaulted."""
    if not config:
        return None
    config = dict(config)
    start = end = None
    if config.get("startTime"):
        start = parse_time(config["startTime"], "startTime")
        if start < now + MIN_LEAD - SLACK:
            raise invalid("The startTime must be scheduled a minimum of thirty minutes from the current time.")
        if start > now + YEAR:
            raise invalid("The startTime can be scheduled up to a year in advance.")
    if config.get("endTime"):
        end = parse_time(config["endTime"], "endTime")
        if end < now + MIN_LEAD - SLACK:
            raise invalid("The endTime must be scheduled a minimum of thirty minutes from the current time.")
        if end > now + 2 * YEAR:
            raise invalid("The endTime must take place no later than two years from the current time.")
        if start is not None and end - start < MIN_LEAD - SLACK:
            raise invalid("The minimum duration between startTime and endTime is thirty minutes.")
        if start is not None and end - start > 2 * YEAR:
            raise invalid("The maximum duration between startTime and endTime is two years.")
        config.setdefault("endBehavior", "STOP_ROLLOUT")
    for window in config.get("maintenanceWindows") or []:
        Cron(window["startTime"])
    return config


def start_of(job: dict) -> float | None:
    config = job.get("schedulingConfig") or {}
    return parse_time(config["startTime"]) if config.get("startTime") else None


def end_of(job: dict) -> float | None:
    config = job.get("schedulingConfig") or {}
    return parse_time(config["endTime"], "endTime") if config.get("endTime") else None


def windows(job: dict) -> list[dict]:
    return (job.get("schedulingConfig") or {}).get("maintenanceWindows") or []


def in_window(job: dict, at: float) -> bool:
    """Inside one of the job's maintenance windows (always true without windows)."""
    found = windows(job)
    if not found:
        return True
    for window in found:
        length = window["durationInMinutes"] * 60
        for begins in Cron(window["startTime"]).after(at - length, limit_days=3):
            if begins > at:
                break
            if at < begins + length:
                return True
    return False


def rolling(job: dict, at: float) -> bool:
    """Whether the schedule lets the job roll out at `at` (IN_PROGRESS) or not (SCHEDULED)."""
    start = start_of(job)
    if start is not None and at < start:
        return False
    return in_window(job, at)


def ended(job: dict, at: float) -> bool:
    end = end_of(job)
    return end is not None and at >= end


def upcoming_rollouts(job: dict, at: float) -> list[dict]:
    """The next seven maintenance window starts (DescribeJob scheduledJobRollouts)."""
    found = windows(job)
    if not found or job.get("status") not in ("SCHEDULED", "IN_PROGRESS"):
        return []
    begin = max(at, start_of(job) or at)
    end = end_of(job)
    starts: set[float] = set()
    for window in found:
        taken = 0
        for moment in Cron(window["startTime"]).after(begin):
            if end is not None and moment >= end:
                break
            starts.add(moment)
            taken += 1
            if taken >= UPCOMING:
                break
    return [{"startTime": format_time(s)} for s in sorted(starts)[:UPCOMING]]
