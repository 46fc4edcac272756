"""Dynamic thing group membership as a client sees it: the registry's
thingGroupMembership events when a thing's indexed data moves it in or out
(received by a real paho subscriber), the 10-groups-per-thing limit with
static groups taking priority, the account's dynamic group quota, and a
connected device whose publish rights follow a policy attached to a dynamic
group as its shadow moves it in and out (HTTP and MQTT shadow updates)."""

from __future__ import annotations

import json

import pytest

from localiot.testing import error_code, error_of, make_client
from test_indexing_dynamic_groups import data, members, report  # noqa: F401 (data is a fixture)

MEMBERSHIP_EVENTS = "$aws/events/thingGroupMembership/#"


@pytest.fixture
def iot(localiot_server):
    client = make_client(localiot_server)
    client.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY_AND_SHADOW"})
    return client




def groups_of(iot, thing):
    return sorted(g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"])


def test_a_shadow_change_publishes_membership_events(iot, data, localiot_devices):
    iot.update_event_configurations(eventConfigurations={"THING_GROUP_MEMBERSHIP": {"Enabled": True}})
    thing = iot.create_thing(thingName="pump-1")
    watcher = localiot_devices.tls()
    assert watcher.subscribe(MEMBERSHIP_EVENTS) == [1]
    group = iot.create_dynamic_thing_group(thingGroupName="hot", queryString="shadow.reported.temp>50")
    watcher.expect_none()  # nobody matches yet

    report(data, "pump-1", temp=80)
    topic = "$aws/events/thingGroupMembership/thingGroup/hot/thing/pump-1/added"
    added = json.loads(watcher.expect(topic).payload)
    assert added["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT" and added["operation"] == "ADDED"
    assert added["groupArn"] == group["thingGroupArn"] and added["groupId"] == group["thingGroupId"]
    assert added["thingArn"] == thing["thingArn"] and added["thingId"] == thing["thingId"]
    report(data, "pump-1", temp=81)  # still a member: nothing
    watcher.expect_none()

    report(data, "pump-1", temp=20)
    removed = json.loads(watcher.expect("$aws/events/thingGroupMembership/thingGroup/hot/thing/pump-1/removed").payload)
    assert removed["operation"] == "REMOVED" and removed["membershipId"] == added["membershipId"]

    iot.create_thing(thingName="pump-2", attributePayload={"attributes": {"hot": "yes"}})
    iot.update_dynamic_thing_group(thingGroupName="hot", thingGroupProperties={}, queryString="attributes.hot:yes")
    watcher.expect("$aws/events/thingGroupMembership/thingGroup/hot/thing/pump-2/added")
    iot.delete_dynamic_thing_group(thingGroupName="hot")
    watcher.expect("$aws/events/thingGroupMembership/thingGroup/hot/thing/pump-2/removed")
    assert groups_of(iot, "pump-2") == []


def test_dynamic_groups_publish_thing_group_events(iot, localiot_devices):
    iot.update_event_configurations(eventConfigurations={"THING_GROUP": {"Enabled": True}})
    watcher = localiot_devices.tls()
    watcher.subscribe("$aws/events/thingGroup/#")
    made = iot.create_dynamic_thing_group(thingGroupName="dyn", queryString="thingName:x*",
                                          thingGroupProperties={"thingGroupDescription": "x things"})
    created = json.loads(watcher.expect("$aws/events/thingGroup/dyn/created").payload)
    assert created["eventType"] == "THING_GROUP_EVENT" and created["operation"] == "CREATED"
    assert created["thingGroupId"] == made["thingGroupId"] and created["description"] == "x things"
    assert created["dynamicGroupMappingId"] and created["versionNumber"] == 1
    iot.update_dynamic_thing_group(thingGroupName="dyn", thingGroupProperties={}, queryString="thingName:y*")
    updated = json.loads(watcher.expect("$aws/events/thingGroup/dyn/updated").payload)
    assert updated["versionNumber"] == 2 and updated["dynamicGroupMappingId"] == created["dynamicGroupMappingId"]
    iot.delete_dynamic_thing_group(thingGroupName="dyn")
    assert json.loads(watcher.expect("$aws/events/thingGroup/dyn/deleted").payload)["operation"] == "DELETED"
    iot.create_thing_group(thingGroupName="static")
    assert json.loads(watcher.expect("$aws/events/thingGroup/static/created").payload)["dynamicGroupMappingId"] is None


def test_membership_events_stay_off_unless_enabled(iot, data, localiot_devices):
    iot.create_thing(thingName="quiet")
    watcher = localiot_devices.tls()
    watcher.subscribe(MEMBERSHIP_EVENTS)
    iot.create_dynamic_thing_group(thingGroupName="all", queryString="thingName:*")
    assert members(iot, "all") == ["quiet"]
    watcher.expect_none()


def test_static_groups_take_priority_at_the_ten_group_limit(iot, data):
    iot.create_thing(thingName="busy")
    for i in range(10):
        iot.create_thing_group(thingGroupName=f"s{i}")
        iot.add_thing_to_thing_group(thingGroupName=f"s{i}", thingName="busy")
    iot.create_dynamic_thing_group(thingGroupName="dyn", queryString="shadow.reported.on:true")
    report(data, "busy", on=True)
    assert members(iot, "dyn") == []  # a thing belongs to at most 10 groups: it stays out
    assert [t["thingName"] for t in iot.search_index(queryString="shadow.reported.on:true")["things"]] == ["busy"]

    iot.remove_thing_from_thing_group(thingGroupName="s0", thingName="busy")  # room: it joins
    assert members(iot, "dyn") == ["busy"]
    assert len(groups_of(iot, "busy")) == 10

    # At the limit with a dynamic group among them, a static add needs overrideDynamicGroups ...
    assert error_code(lambda: iot.add_thing_to_thing_group(thingGroupName="s0", thingName="busy")) == \
        "InvalidRequestException"
    iot.add_thing_to_thing_group(thingGroupName="s0", thingName="busy", overrideDynamicGroups=True)
    assert "dyn" not in groups_of(iot, "busy") and len(groups_of(iot, "busy")) == 10
    report(data, "busy", on=True, again=1)  # ... and the static membership keeps priority
    assert members(iot, "dyn") == []


def test_the_account_quota_of_dynamic_groups(iot):
    from localiot.services.indexing.dynamic_groups import MAX_DYNAMIC_GROUPS

    for i in range(MAX_DYNAMIC_GROUPS):
        iot.create_dynamic_thing_group(thingGroupName=f"g{i}", queryString=f"attributes.n:{i}")
    assert error_of(lambda: iot.create_dynamic_thing_group(thingGroupName="one-more", queryString="thingName:x")) == \
        ("LimitExceededException", 410)
    assert "one-more" not in [g["groupName"] for g in iot.list_thing_groups(namePrefixFilter="one")["thingGroups"]]
    iot.delete_dynamic_thing_group(thingGroupName="g0")
    iot.create_dynamic_thing_group(thingGroupName="one-more", queryString="thingName:x")


def _policy(iot, name, statements):
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def test_a_device_gains_and_loses_rights_as_its_shadow_moves_it(iot, data, localiot_server, localiot_devices):
    """A policy on a dynamic group applies to the things that match its query (AWS's
    guide: 'The policy applies only to those things that meet the criteria'); the
    connected device's rights follow without reconnecting."""
    region, account = "us-east-1", "123456789012"
    own = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"arn:aws:iot:{region}:{account}:topic/$aws/things/car-7/shadow/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"arn:aws:iot:{region}:{account}:topicfilter/$aws/things/car-7/shadow/*"]}]}
    device = localiot_devices.tls("car-7", policy=own)
    iot.create_thing(thingName="car-7")
    iot.attach_thing_principal(thingName="car-7", principal=device.cert.arn)
    _policy(iot, "leased-topics", [{"Effect": "Allow", "Action": "iot:Publish",
                                    "Resource": f"arn:aws:iot:{region}:{account}:topic/fleet/leased/*"}])
    group = iot.create_dynamic_thing_group(thingGroupName="leased", queryString="shadow.reported.contract:lease")
    iot.attach_policy(policyName="leased-topics", target=group["thingGroupArn"])
    not_authorized = 135
    assert device.publish("fleet/leased/car-7", b"{}") == not_authorized

    report(data, "car-7", contract="lease")  # UpdateThingShadow over HTTP moves it in
    assert members(iot, "leased") == ["car-7"]
    assert device.publish("fleet/leased/car-7", b"{}") == 0

    assert device.subscribe("$aws/things/car-7/shadow/update/accepted") == [1]
    update = {"state": {"reported": {"contract": "owned"}}}  # the device's own MQTT update moves it out
    assert device.publish("$aws/things/car-7/shadow/update", json.dumps(update)) == 0
    device.expect("$aws/things/car-7/shadow/update/accepted")
    assert members(iot, "leased") == []
    assert device.publish("fleet/leased/car-7", b"{}") == not_authorized

    update = {"state": {"reported": {"contract": "lease"}}}  # and back in, over MQTT
    assert device.publish("$aws/things/car-7/shadow/update", json.dumps(update)) == 0
    device.expect("$aws/things/car-7/shadow/update/accepted")
    assert device.publish("fleet/leased/car-7", b"{}") == 0
    assert device.connected.is_set() and not device.closed.is_set()
