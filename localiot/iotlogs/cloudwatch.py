"""Shipping log entries to CloudWatch Logs, off the event loop.

Entries are queued (a deque append, nothing else on the caller's path) and
sent by a worker thread once a second, or at once when a batch is full, with
`PutLogEvents` at the downstream endpoint (LOCALIOT_AWS_ENDPOINT_URL, through
`runtime.aws_client("logs", region)`). The log group is created on first use
(`AWSIotLogsV2` for v2 logging, `AWSIotLogs` for v1), as is the log stream.
AWS IoT's stream names are opaque identifiers it chooses; localiot uses one
UUID per server process. `flush()` sends what is queued now (the
"iot-logs" periodic job calls it, so a test that moves the clock finds the
entries already delivered).

A call that fails is logged on the server log with CloudWatch's error, never
retried forever: the entries of that batch are dropped, as AWS IoT drops
entries it cannot deliver (a missing role permission, a throttled account).
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid

log = logging.getLogger("localiot.iotlogs")

V2_GROUP = "AWSIotLogsV2"
V1_GROUP = "AWSIotLogs"
BATCH_MAX_EVENTS = 10_000  # PutLogEvents quotas
BATCH_MAX_BYTES = 1_048_576
_EVENT_OVERHEAD = 26
INTERVAL = 1.0


class Shipper:
    def __init__(self, runtime):
        self.runtime = runtime
        self.stream = str(uuid.uuid4())
        self._queue: collections.deque = collections.deque()  # (account, region, group, ms, line)
        self._lock = threading.Lock()  # one flush at a time: events stay in order
        self._ready: set[tuple[str, str]] = set()  # (region, group) whose group and stream exist
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def put(self, account: str, region: str, group: str, millis: int, line: str) -> None:
        self._queue.append((account, region, group, millis, line))
        if self._thread is None:
            self._start()
        elif len(self._queue) >= BATCH_MAX_EVENTS:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="localiot-iotlogs", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("shipping AWS IoT log entries failed")

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def forget(self) -> None:
        """Drop what is queued (the server's state was reset)."""
        self._queue.clear()

    def flush(self) -> int:
        """Send everything queued now; the number of entries CloudWatch accepted."""
        with self._lock:
            taken = []
            while self._queue:
                taken.append(self._queue.popleft())
            if not taken:
                return 0
            by_target: dict[tuple[str, str], list] = {}
            for account, region, group, millis, line in taken:
                by_target.setdefault((region, group), []).append((millis, line))
            sent = 0
            for (region, group), events in by_target.items():
                sent += self._send(region, group, events)
            return sent

    def _send(self, region: str, group: str, events: list) -> int:
        client = self.runtime.aws_client("logs", region)
        try:
            self._ensure(client, region, group)
        except Exception as error:
            log.warning("CloudWatch Logs group %s could not be prepared, %d entries dropped: %s",
                        group, len(events), error)
            return 0
        events.sort(key=lambda e: e[0])  # PutLogEvents wants them in time order
        sent = 0
        for batch in _batches(events):
            try:
                answer = client.put_log_events(logGroupName=group, logStreamName=self.stream,
                                               logEvents=[{"timestamp": t, "message": m} for t, m in batch])
            except Exception as error:
                log.warning("PutLogEvents to %s failed, %d entries dropped: %s", group, len(batch), error)
                continue
            rejected = answer.get("rejectedLogEventsInfo")
            if rejected:
                log.warning("CloudWatch Logs rejected some AWS IoT log entries: %s", rejected)
            sent += len(batch)
        return sent

    def _ensure(self, client, region: str, group: str) -> None:
        if (region, group) in self._ready:
            return
        for call, kwargs in ((client.create_log_group, {"logGroupName": group}),
                             (client.create_log_stream, {"logGroupName": group, "logStreamName": self.stream})):
            try:
                call(**kwargs)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
        self._ready.add((region, group))


def _batches(events: list):
    batch, size = [], 0
    for event in events:
        cost = len(event[1].encode()) + _EVENT_OVERHEAD
        if batch and (len(batch) >= BATCH_MAX_EVENTS or size + cost > BATCH_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += cost
    if batch:
        yield batch
