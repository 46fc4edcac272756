"""Scheduling as pure functions: StringDateTime parsing, AWS cron expressions,
maintenance windows and the next rollouts."""

from datetime import datetime, timezone

import pytest

from localiot.protocol.errors import ServiceError
from localiot.services.jobs import schedule


def epoch(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_parse_time_forms():
    assert schedule.parse_time("2030-01-02T03:04") == epoch("2030-01-02T03:04")
    assert schedule.parse_time("2030-01-02T03:04:05Z") == epoch("2030-01-02T03:04:05")
    assert schedule.parse_time("2030-01-02T05:04+02:00") == epoch("2030-01-02T03:04")
    assert schedule.format_time(epoch("2030-01-02T03:04:59")) == "2030-01-02T03:04"
    with pytest.raises(ServiceError) as e:
        schedule.parse_time("next tuesday")
    assert e.value.code == "InvalidRequestException"


def occurrences(expression, start, count):
    found = []
    for moment in schedule.Cron(expression).after(epoch(start)):
        found.append(schedule.format_time(moment))
        if len(found) == count:
            return found
    return found


def test_cron_fields():
    # 2030-01-01 is a Tuesday; AWS day-of-week 1 is Sunday
    assert occurrences("cron(30 2 ? * MON-WED *)", "2030-01-01T00:00", 3) == [
        "2030-01-01T02:30", "2030-01-02T02:30", "2030-01-07T02:30"]
    assert occurrences("cron(0 */6 * * ? *)", "2030-01-01T01:00", 3) == [
        "2030-01-01T06:00", "2030-01-01T12:00", "2030-01-01T18:00"]
    assert occurrences("cron(0,30 9 15 JAN,MAR ? 2030)", "2030-01-01T00:00", 4) == [
        "2030-01-15T09:00", "2030-01-15T09:30", "2030-03-15T09:00", "2030-03-15T09:30"]
    assert occurrences("0 0 ? * 1 *", "2030-01-01T00:00", 1) == ["2030-01-06T00:00"]  # bare form, Sunday
    assert occurrences("cron(0 0 ? * * 2029)", "2030-01-01T00:00", 1) == []


@pytest.mark.parametrize("expression", [
    "cron(0 0 * * * *)",  # day-of-month and day-of-week both set
    "cron(0 0 ? * ? *)",  # neither
    "cron(61 0 * * ? *)",
    "cron(0 0 * FOO ? *)",
    "cron(0 0 * *)",
    "cron(0 0/0 * * ? *)",
])
def test_bad_cron(expression):
    with pytest.raises(ServiceError) as e:
        schedule.Cron(expression)
    assert e.value.code == "InvalidRequestException"


def test_windows_and_rollouts():
    job = {"status": "SCHEDULED", "schedulingConfig": {
        "maintenanceWindows": [{"startTime": "cron(0 22 * * ? *)", "durationInMinutes": 180}]}}
    assert not schedule.in_window(job, epoch("2030-01-01T21:59"))
    assert schedule.in_window(job, epoch("2030-01-01T22:00"))
    assert schedule.in_window(job, epoch("2030-01-02T00:59"))  # a window running past midnight
    assert not schedule.in_window(job, epoch("2030-01-02T01:00"))
    rollouts = schedule.upcoming_rollouts(job, epoch("2030-01-01T23:00"))
    assert [r["startTime"] for r in rollouts] == [f"2030-01-{d:02d}T22:00" for d in range(2, 9)]
    job["schedulingConfig"]["startTime"] = "2030-01-05T00:00"
    assert not schedule.rolling(job, epoch("2030-01-01T22:30"))  # before startTime
    assert schedule.rolling(job, epoch("2030-01-05T22:30"))
    job["schedulingConfig"]["endTime"] = "2030-01-07T00:00"
    assert [r["startTime"] for r in schedule.upcoming_rollouts(job, epoch("2030-01-01T23:00"))] == [
        "2030-01-05T22:00", "2030-01-06T22:00"]
    assert schedule.ended(job, epoch("2030-01-07T00:00"))


def test_validate_scheduling_config():
    now = epoch("2030-01-01T00:00")
    config = schedule.validate({"startTime": "2030-01-01T00:30", "endTime": "2030-01-01T01:00"}, now)
    assert config["endBehavior"] == "STOP_ROLLOUT"
    for bad in ({"startTime": "2030-01-01T00:10"},
                {"startTime": "2031-06-01T00:00"},
                {"endTime": "2030-01-01T00:20"},
                {"startTime": "2030-01-01T01:00", "endTime": "2030-01-01T01:10"},
                {"endTime": "2033-01-01T00:00"},
                {"maintenanceWindows": [{"startTime": "cron(bad)", "durationInMinutes": 10}]}):
        with pytest.raises(ServiceError):
            schedule.validate(bad, now)
