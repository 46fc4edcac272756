"""Delivering AWS IoT log entries to CloudWatch Logs as time-driven work: what
localiot.iotlogs queued is sent on every background period and whenever a
test moves the clock (besides the shipper's own once-a-second thread)."""

from __future__ import annotations

import asyncio

from localiot import iotlogs
from localiot.background import periodic


@periodic("iot-logs")
async def deliver(store, runtime) -> None:
    logs = iotlogs.existing(runtime)
    if logs is not None:
        await asyncio.get_running_loop().run_in_executor(None, logs.shipper.flush)
