"""Device shadows over HTTP (boto3 iot-data against the real server): the same
case table as the service door, plus listing, topics and error shapes."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from localiot.testing import make_client
from shadow_cases import CASES, Outcome, T, run_case

ERROR_TYPES = {400: "InvalidRequestException", 404: "ResourceNotFoundException", 409: "ConflictException",
               413: "RequestEntityTooLargeException", 415: "UnsupportedDocumentEncodingException"}


class Recorder:
    """Messages the server put on its bus, as (topic, decoded payload)."""

    def __init__(self, bus):
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.unsubscribe = bus.subscribe(self._on_message)

    def _on_message(self, account, region, topic, payload):
        with self._lock:
            self.messages.append((topic, json.loads(payload)))

    def take(self) -> list[tuple[str, dict]]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken


@pytest.fixture
def recorder(localiot_server):
    rec = Recorder(localiot_server.app.bus)
    yield rec
    rec.unsubscribe()


@pytest.fixture
def data(localiot_server):
    # No retries: a 5xx must fail the test at once, not after four more tries.
    return make_client(localiot_server, "iot-data", config=BotoConfig(retries={"max_attempts": 1}))


class HttpDoor:
    def __init__(self, server, client, recorder):
        self.server, self.client, self.recorder = server, client, recorder
        self.last_body = b""
        # botocore keeps only the modelled members of an error; the raw body
        # holds the whole shadow error document (code, message, clientToken).
        client.meta.events.register("after-call.iot-data", self._keep_body)

    def _keep_body(self, http_response, **kwargs):
        if http_response.status_code >= 300:  # a success body is the payload stream: leave it unread
            self.last_body = http_response.content

    def set_time(self, epoch):
        self.server.clock.set(epoch)

    def call(self, thing, shadow, method, **kwargs) -> Outcome:
        if shadow is not None:
            kwargs["shadowName"] = shadow
        self.recorder.take()
        out = Outcome()
        try:
            response = method(thingName=thing, **kwargs)
            out.reply = json.loads(response["payload"].read())
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        except ClientError as error:
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            assert error.response["Error"]["Code"] == ERROR_TYPES[status]
            body = json.loads(self.last_body)
            assert body["message"] == error.response["Error"]["Message"]
            out.error = {k: body[k] for k in ("code", "message", "clientToken") if k in body}
            assert out.error["code"] == status
        prefix = f"$aws/things/{thing}/shadow" + (f"/name/{shadow}" if shadow else "") + "/"
        for topic, body in self.recorder.take():
            out.published[topic.removeprefix(prefix)] = body
        return out

    def update(self, thing, shadow, payload):
        return self.call(thing, shadow, self.client.update_thing_shadow, payload=payload)

    def get(self, thing, shadow):
        return self.call(thing, shadow, self.client.get_thing_shadow)

    def delete(self, thing, shadow):
        return self.call(thing, shadow, self.client.delete_thing_shadow)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, localiot_server, data, recorder):
    run_case(case, HttpDoor(localiot_server, data, recorder))


def test_list_named_shadows_for_thing_pages(localiot_server, data):
    names = [f"s{i:02d}" for i in range(7)]
    for name in reversed(names):
        data.update_thing_shadow(thingName="dev", shadowName=name, payload=b'{"state":{"reported":{"a":1}}}')
    data.update_thing_shadow(thingName="dev", payload=b'{"state":{"reported":{"a":1}}}')
    data.update_thing_shadow(thingName="dev2", shadowName="x", payload=b'{"state":{"reported":{"a":1}}}')
    data.delete_thing_shadow(thingName="dev", shadowName="s03")
    localiot_server.clock.set(T)
    seen, pages, token = [], 0, None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = data.list_named_shadows_for_thing(thingName="dev", pageSize=3, **kwargs)
        pages += 1
        assert page["timestamp"] in (T, T + 1)
        seen += page["results"]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ["s00", "s01", "s02", "s04", "s05", "s06"]
    assert pages == 2
    everything = data.list_named_shadows_for_thing(thingName="dev")
    assert everything["results"] == seen and "nextToken" not in everything
    assert data.list_named_shadows_for_thing(thingName="nobody")["results"] == []


def test_list_named_shadows_rejects_bad_input(data):
    with pytest.raises(ClientError) as info:
        data.list_named_shadows_for_thing(thingName="dev", nextToken="not-a-token")
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        data.list_named_shadows_for_thing(thingName="dev", pageSize=101)
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"


def test_update_and_delete_publish_on_the_shadow_topics(localiot_server, data, recorder):
    localiot_server.clock.set(T)
    data.update_thing_shadow(thingName="lamp", shadowName="cfg",
                             payload=json.dumps({"state": {"desired": {"on": True}}, "clientToken": "c"}))
    messages = recorder.take()
    prefix = "$aws/things/lamp/shadow/name/cfg"
    assert [topic for topic, _ in messages] == [f"{prefix}/update/accepted", f"{prefix}/update/delta",
                                                f"{prefix}/update/documents"]
    assert messages[1][1] == {"version": 1, "timestamp": T, "state": {"on": True},
                              "metadata": {"on": {"timestamp": T}}, "clientToken": "c"}
    data.get_thing_shadow(thingName="lamp", shadowName="cfg")
    assert recorder.take() == []  # HTTP GET answers in the response only
    data.update_thing_shadow(thingName="lamp", payload=b'{"state":{"reported":{"on":true}}}')
    assert [t for t, _ in recorder.take()] == ["$aws/things/lamp/shadow/update/accepted",
                                               "$aws/things/lamp/shadow/update/documents"]
    data.delete_thing_shadow(thingName="lamp")
    assert recorder.take() == [("$aws/things/lamp/shadow/delete/accepted", {"version": 1, "timestamp": T})]
    with pytest.raises(ClientError):
        data.update_thing_shadow(thingName="lamp", payload=b'{"state":{"reported":{"on":[null]}}}')
    assert recorder.take() == []  # rejections over HTTP are not published


def test_error_body_is_the_shadow_error_document(localiot_server, data, recorder):
    door = HttpDoor(localiot_server, data, recorder)
    with pytest.raises(ClientError) as info:
        data.update_thing_shadow(thingName="dev", payload=json.dumps({"state": 1, "clientToken": "ct"}))
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "InvalidRequestException"
    assert response["Error"] == {"Code": "InvalidRequestException", "Message": "State node must be an object"}
    assert json.loads(door.last_body) == {"message": "State node must be an object", "code": 400,
                                          "clientToken": "ct"}


def test_shadows_do_not_need_a_registered_thing_and_outlive_it(localiot_server, data):
    iot = make_client(localiot_server)
    data.update_thing_shadow(thingName="unregistered", payload=b'{"state":{"reported":{"a":1}}}')
    assert json.loads(data.get_thing_shadow(thingName="unregistered")["payload"].read())["version"] == 1
    iot.create_thing(thingName="registered")
    data.update_thing_shadow(thingName="registered", payload=b'{"state":{"reported":{"a":1}}}')
    iot.delete_thing(thingName="registered")
    assert json.loads(data.get_thing_shadow(thingName="registered")["payload"].read())["state"] == {
        "reported": {"a": 1}}


def test_shadows_are_scoped_to_account_and_region(localiot_server, data):
    data.update_thing_shadow(thingName="dev", payload=b'{"state":{"reported":{"a":1}}}')
    other_region = make_client(localiot_server, "iot-data", region="eu-west-1")
    with pytest.raises(other_region.exceptions.ResourceNotFoundException):
        other_region.get_thing_shadow(thingName="dev")


def test_shadow_names_follow_the_model(data):
    with pytest.raises(ClientError) as info:
        data.update_thing_shadow(thingName="dev", shadowName="bad name", payload=b'{"state":{}}')
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "[$a-zA-Z0-9:_-]+" in info.value.response["Error"]["Message"]
