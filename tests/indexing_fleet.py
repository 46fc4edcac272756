"""The seeded fleet the fleet indexing tests query: registry (types, groups,
attributes), classic and named shadows, custom fields, and connectivity from
real MQTT connections. Half of it exists before indexing is turned on (the
index is built from the store), the rest is written after (the index follows)."""

from __future__ import annotations

import json
import time
import uuid

from localiot.testing import plain_device

WAIT = 5
S1, S2, S3, S4, S5 = (f"sensor-0{i}" for i in range(1, 6))
GA, GB, C1, C2 = "gateway-a", "gateway-b", "cam_1", "cam:2"
ALL = {S1, S2, S3, S4, S5, GA, GB, C1, C2}

THINGS = {
    S1: ("sensor", {"floor": "1", "firmware": "2.1", "model": "T100"}, ["building5"]),
    S2: ("sensor", {"floor": "2", "firmware": "2.2", "model": "T100"}, ["building5"]),
    S3: ("sensor", {"floor": "3", "firmware": "2.3", "model": "T200"}, ["building6"]),
    S4: ("sensor", {"floor": "10", "firmware": "3.0", "model": "T200"}, ["building6"]),
    S5: ("sensor", {"floor": "5", "firmware": "1.9", "model": "T100:plus"}, []),
    GA: ("gateway", {"floor": "1", "site": "north"}, ["building5"]),
    GB: ("gateway", {"floor": "2", "site": "south"}, []),
    C1: (None, {"zone": "x"}, ["building6"]),
    C2: (None, {}, []),
}
# (thing, shadow name or None, state) applied in order, one UpdateThingShadow each
SHADOWS = [
    (S1, None, {"reported": {"temp": 21.5, "battery": 80, "mode": "eco", "tags": ["a", "b"]},
                "desired": {"mode": "eco"}}),
    (S2, None, {"reported": {"temp": 25, "battery": 15, "mode": "boost"}, "desired": {"mode": "eco"}}),
    (S3, None, {"reported": {"temp": 18, "battery": 55}}),
    (S3, None, {"reported": {"temp": 19, "mode": "eco"}}),
    (S5, None, {"reported": {"temp": -3.5, "battery": 100, "mode": "deep sleep"}}),
    (S5, "config", {"reported": {"interval": 30}}),
    (GA, None, {"reported": {"uptime": 1000}}),
    (GA, "config", {"reported": {"interval": 60}}),
    (GA, "diag", {"reported": {"errors": 2}}),
]
CUSTOM_FIELDS = [
    {"name": "shadow.reported.temp", "type": "Number"},
    {"name": "shadow.reported.battery", "type": "Number"},
    {"name": "attributes.floor", "type": "Number"},
    {"name": "attributes.model", "type": "String"},
    {"name": "shadow.reported.mode", "type": "String"},
]
CONFIG = {
    "thingIndexingMode": "REGISTRY_AND_SHADOW",
    "thingConnectivityIndexingMode": "STATUS",
    "namedShadowIndexingMode": "ON",
    "filter": {"namedShadowNames": ["config", "diag"]},
    "customFields": CUSTOM_FIELDS,
}
CONNECTED = [S1, S2, GA]  # S2 disconnects again


def eventually(fn, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def seed(server, iot, data):
    """Build the fleet; returns the connected devices (close them at the end)."""
    for thing_type in ("sensor", "gateway"):
        iot.create_thing_type(thingTypeName=thing_type)
    for group in ("building5", "building6"):
        iot.create_thing_group(thingGroupName=group)
    early = [S1, S2, S3, GA, C1]  # before indexing is on: built from the store
    for name in early:
        _create(iot, name)
    for thing, shadow, state in SHADOWS[:4]:
        _shadow(data, thing, shadow, state)
    iot.update_indexing_configuration(thingIndexingConfiguration=CONFIG)
    for name in THINGS:
        if name not in early:
            _create(iot, name)
    for thing, shadow, state in SHADOWS[4:]:
        _shadow(data, thing, shadow, state)
    clients = {name: plain_device(server, name) for name in CONNECTED}
    eventually(lambda: _connected_count(iot) == 3)
    clients.pop(S2).close()
    eventually(lambda: _connected_count(iot) == 2)
    return clients


def _connected_count(iot):
    return len(iot.search_index(queryString="connectivity.connected:true")["things"])


def _create(iot, name):
    thing_type, attributes, groups = THINGS[name]
    kw = {"thingTypeName": thing_type} if thing_type else {}
    iot.create_thing(thingName=name, attributePayload={"attributes": attributes}, **kw)
    for group in groups:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)


def _shadow(data, thing, shadow, state):
    kw = {"shadowName": shadow} if shadow else {}
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": state}).encode(), **kw)


def search_all(iot, query, **kw):
    """Every thing name matching `query`, following nextToken."""
    names, token = [], None
    while True:
        page = iot.search_index(queryString=query, **({"nextToken": token} if token else {}), **kw)
        names += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            return names


def unique(prefix="x"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def connect(server, client_id):
    """A plain-MQTT paho client connected as `client_id` (connectivity for the index)."""
    return plain_device(server, client_id).client


def disconnect(client):
    client.disconnect()
    client.loop_stop()
