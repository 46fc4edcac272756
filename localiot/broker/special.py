"""What a connection does with a publish its admission did not simply accept
(localiot.broker.admission): refuse it as AWS does (3.1.1: disconnect; 5: a PUBACK
reason code), or hand it to the door serving its reserved topic and acknowledge
it once the door's unit of work has run."""

from __future__ import annotations

import asyncio

from localiot import iotlogs
from localiot.broker import codec
from localiot.broker.admission import INVALID, RESERVED, Decision
from localiot.broker.states import CLOSED


def publish(conn, decision: Decision, qos: int, pid: int, payload: bytes, props) -> None:
    """A publish the admission did not simply accept: refused, or served by a door."""
    status = decision.status
    if status == INVALID:
        iotlogs.publish_refused(conn, decision)
        if conn.v5 and qos:
            conn._puback(pid, codec.TOPIC_NAME_INVALID)
        elif not conn.v5:
            conn.drop("CLIENT_ERROR")
        return
    served = status == RESERVED and conn.broker.serve_reserved(conn.identity, decision, payload, props or {},
                                                                qos, connection=conn)
    if isinstance(served, asyncio.Future):  # the door's unit of work runs on a worker (PostgreSQL)
        served.add_done_callback(lambda done: _served(conn, done, decision, qos, pid))
        return
    if served:
        if qos:
            conn.push(b"\x40\x02" + pid.to_bytes(2, "big"))
        return
    refused(conn, decision, qos, pid)


def _served(conn, done: asyncio.Future, decision: Decision, qos: int, pid: int) -> None:
    """A door's unit of work ended: the PUBACK, or the refusal when it failed."""
    if conn.state == CLOSED:
        return
    if done.cancelled() or done.exception() is not None:
        refused(conn, decision, qos, pid)
    elif qos:
        conn.push(b"\x40\x02" + pid.to_bytes(2, "big"))


def refused(conn, decision: Decision, qos: int, pid: int) -> None:
    """Denied, or refused by the door."""
    if conn.meter is not None:
        conn.meter.denied()
    iotlogs.publish_refused(conn, decision)
    if not conn.v5:
        conn.drop("AUTH_ERROR")  # AWS disconnects a 3.1.1 client on an unauthorized publish
    elif qos:
        conn._puback(pid, codec.NOT_AUTHORIZED)
