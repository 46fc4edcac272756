"""AWS IoT Jobs: the control plane (iot), the device API (iot-jobs-data, over
HTTP here and over MQTT through `localiot.doors.jobs`) and the timer.

- `model.py`: the store layout of jobs, executions and links; output shapes.
- `jobs.py`: CreateJob, DescribeJob, GetJobDocument, ListJobs, UpdateJob,
  CancelJob, DeleteJob, AssociateTargetsWithJob.
- `execution_handlers.py`: DescribeJobExecution, ListJobExecutionsForJob /
  ForThing, CancelJobExecution, DeleteJobExecution.
- `executions.py`: the execution state machine, timers, retries.
- `lifecycle.py`: abort, cancel, completion and deletion of jobs.
- `rollout.py`: rollout pacing (maximumPerMinute, exponentialRate) and the
  schedule (startTime, endTime + endBehavior, maintenance windows).
- `schedule.py`: time strings and AWS cron expressions, pure functions.
- `targets.py`: thing and thing group targets, continuous jobs following
  group membership.
- `templates.py` + `managed.py`: job templates and AWS managed templates.
- `documents.py`: S3 documentSource, template parameters, presigned URLs.
- `validation.py`: configuration checks the service model leaves out.
- `notify.py`: `$aws/things/{thing}/jobs/notify[-next]` and the
  `$aws/events/job[Execution]/...` events.
- `data_plane.py`: GetPendingJobExecutions, StartNextPendingJobExecution,
  DescribeJobExecution, UpdateJobExecution for both doors.
- `tick.py`: `tick(store, runtime, now)`, all time-driven work.

Wiring: localiot.background runs `tick` with the other time-driven work;
`on_thing_added_to_group` and `on_thing_deleted` are registered on the
registry's hooks (localiot.services.hooks) when this package is imported.
"""

from localiot.services import hooks
from localiot.services.jobs.targets import on_thing_added_to_group, on_thing_deleted
from localiot.services.jobs.tick import tick

hooks.on(hooks.THING_ADDED_TO_GROUP, on_thing_added_to_group)
hooks.on(hooks.THING_DELETED, on_thing_deleted)

__all__ = ["tick", "on_thing_added_to_group", "on_thing_deleted"]
