"""localiot.services.in_process: a handler called from inside localiot (Fleet Hub's
pages, Device Advisor's cases, OTA's jobs) answers what boto3 gets over HTTP, as
plain values, and refuses bad input with the engine's own error."""

from __future__ import annotations

import pytest

from localiot.protocol.errors import ServiceError
from localiot.protocol.serializer import JsonText
from localiot.services import HANDLERS
from localiot.services.in_process import call_in_process, call_within
from localiot.services.unit_of_work import unit_of_work
from localiot.testing import error_of, error_message, make_client
from localiot.testing.aws import ACCOUNT, REGION


def _holds_text(value) -> bool:
    if isinstance(value, JsonText):
        return True
    if isinstance(value, dict):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_text(v) for v in value)
    return False


def _in_process(server, operation: str, params: dict) -> dict:
    return server.call(lambda: call_in_process(server.app.runtime, "iot", operation, params,
                                               account=ACCOUNT, region=REGION))


def test_a_spliced_list_page_comes_back_as_the_values_boto3_reads(localiot_server):
    iot = make_client(localiot_server)
    for name in ("in-process-a", "in-process-b", "in-process-c"):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"n": name[-1]}})

    def raw():
        with unit_of_work(localiot_server.app.runtime, ACCOUNT, REGION, "iot", "ListThings") as ctx:
            return HANDLERS[("iot", "ListThings")](ctx, {"maxResults": 2})

    assert _holds_text(localiot_server.call(raw))  # what the handler returns is spliced reply text
    page = _in_process(localiot_server, "ListThings", {"maxResults": 2})
    assert not _holds_text(page)
    listed = iot.list_things(maxResults=2)
    assert page["things"] == listed["things"]
    assert page["nextToken"] == listed["nextToken"]


def test_bad_input_gets_the_engines_error_and_changes_nothing(localiot_server):
    iot = make_client(localiot_server)
    with pytest.raises(ServiceError) as info:
        _in_process(localiot_server, "CreateThing", {"thingName": "not a valid name"})
    assert error_of(iot.create_thing, thingName="not a valid name") == (info.value.code, 400)
    assert info.value.message == error_message(iot.create_thing, thingName="not a valid name")
    assert iot.list_things()["things"] == []


def test_an_operation_without_a_handler_is_not_implemented(localiot_server):
    with pytest.raises(ServiceError) as info:
        localiot_server.call(lambda: call_in_process(localiot_server.app.runtime, "iot", "NoSuchOperation", {},
                                                     account=ACCOUNT, region=REGION))
    assert (info.value.code, info.value.status) == ("NotImplementedException", 501)


def test_call_within_shares_the_callers_transaction(localiot_server):
    iot = make_client(localiot_server)

    def create_then_fail():
        with unit_of_work(localiot_server.app.runtime, ACCOUNT, REGION, "iot", "Test") as ctx:
            call_within(ctx, "iot", "CreateThing", {"thingName": "in-process-rolled-back"})
            assert [t["thingName"] for t in call_within(ctx, "iot", "ListThings", {})["things"]] == [
                "in-process-rolled-back"]
            raise RuntimeError("the caller fails after the call")

    with pytest.raises(RuntimeError):
        localiot_server.call(create_then_fail)
    assert iot.list_things()["things"] == []  # undone with the caller's work
