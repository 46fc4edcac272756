"""Secure Tunneling's API through boto3: OpenTunnel, DescribeTunnel,
ListTunnels, CloseTunnel, RotateTunnelAccessToken, tags, expiry on the
injectable clock, and the tunnels/notify message reaching a paho device over
mutual TLS under its policy."""

from __future__ import annotations

import json

import pytest

from localiot.testing import ACCOUNT, REGION, advance, error_code, make_client


@pytest.fixture
def tunnels(localiot_server):
    return make_client(localiot_server, "iotsecuretunneling")


def test_open_and_describe(tunnels):
    opened = tunnels.open_tunnel(description="ssh to pump", destinationConfig={"thingName": "pump-1",
                                 "services": ["SSH"]}, timeoutConfig={"maxLifetimeTimeoutMinutes": 30},
                                 tags=[{"key": "team", "value": "ops"}])
    assert opened["tunnelArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:tunnel/{opened['tunnelId']}"
    assert opened["sourceAccessToken"] != opened["destinationAccessToken"]
    tunnel = tunnels.describe_tunnel(tunnelId=opened["tunnelId"])["tunnel"]
    assert tunnel["status"] == "OPEN"
    assert tunnel["description"] == "ssh to pump"
    assert tunnel["destinationConfig"] == {"thingName": "pump-1", "services": ["SSH"]}
    assert tunnel["timeoutConfig"] == {"maxLifetimeTimeoutMinutes": 30}
    assert tunnel["sourceConnectionState"]["status"] == "DISCONNECTED"
    assert tunnel["destinationConnectionState"]["status"] == "DISCONNECTED"
    assert tunnel["tags"] == [{"key": "team", "value": "ops"}]
    assert tunnel["createdAt"] == tunnel["lastUpdatedAt"]
    # no destination config and no timeout: AWS's 12-hour default
    bare = tunnels.describe_tunnel(tunnelId=tunnels.open_tunnel()["tunnelId"])["tunnel"]
    assert bare["timeoutConfig"] == {"maxLifetimeTimeoutMinutes": 720}
    assert "destinationConfig" not in bare and "tags" not in bare


def test_bad_input_changes_nothing(tunnels):
    assert error_code(tunnels.open_tunnel, destinationConfig={"services": ["a", "b", "c", "d"]}) \
        == "InvalidRequestException"
    assert error_code(tunnels.open_tunnel, destinationConfig={"services": ["a", "a"]}) == "InvalidRequestException"
    assert error_code(tunnels.open_tunnel, timeoutConfig={"maxLifetimeTimeoutMinutes": 721}) \
        == "InvalidRequestException"
    assert error_code(tunnels.open_tunnel, destinationConfig={"thingName": "bad name!", "services": ["SSH"]}) \
        == "InvalidRequestException"
    assert tunnels.list_tunnels()["tunnelSummaries"] == []
    assert error_code(tunnels.describe_tunnel, tunnelId="nope") == "ResourceNotFoundException"
    assert error_code(tunnels.close_tunnel, tunnelId="nope") == "ResourceNotFoundException"
    assert error_code(tunnels.rotate_tunnel_access_token, tunnelId="nope", clientMode="ALL") \
        == "ResourceNotFoundException"


def test_list_newest_first_with_thing_filter_and_pages(tunnels):
    ids = [tunnels.open_tunnel(destinationConfig={"thingName": "a" if i % 2 else "b", "services": ["SSH"]})
           ["tunnelId"] for i in range(5)]
    listed = tunnels.list_tunnels()["tunnelSummaries"]
    assert [t["tunnelId"] for t in listed] == ids[::-1]
    assert {t["status"] for t in listed} == {"OPEN"}
    assert [t["tunnelId"] for t in tunnels.list_tunnels(thingName="a")["tunnelSummaries"]] == [ids[3], ids[1]]
    seen, token = [], None
    while True:
        page = tunnels.list_tunnels(maxResults=2, **({"nextToken": token} if token else {}))
        seen += [t["tunnelId"] for t in page["tunnelSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ids[::-1]
    assert error_code(tunnels.list_tunnels, nextToken="garbage") == "InvalidRequestException"


def test_close_and_delete(tunnels):
    tunnel_id = tunnels.open_tunnel()["tunnelId"]
    tunnels.close_tunnel(tunnelId=tunnel_id)
    described = tunnels.describe_tunnel(tunnelId=tunnel_id)["tunnel"]
    assert described["status"] == "CLOSED"
    assert described["lastUpdatedAt"] >= described["createdAt"]
    tunnels.close_tunnel(tunnelId=tunnel_id)  # closing twice is not an error
    assert error_code(tunnels.rotate_tunnel_access_token, tunnelId=tunnel_id, clientMode="ALL") \
        == "InvalidRequestException"
    tunnels.close_tunnel(tunnelId=tunnel_id, delete=True)
    assert error_code(tunnels.describe_tunnel, tunnelId=tunnel_id) == "ResourceNotFoundException"
    assert tunnels.list_tunnels()["tunnelSummaries"] == []


def test_rotate(tunnels):
    opened = tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": ["SSH"]})
    source_only = tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"], clientMode="SOURCE")
    assert set(source_only) - {"ResponseMetadata"} == {"tunnelArn", "sourceAccessToken"}
    assert source_only["sourceAccessToken"] != opened["sourceAccessToken"]
    both = tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"], clientMode="ALL",
                                              destinationConfig={"thingName": "pump-2", "services": ["VNC", "SSH"]})
    assert {"sourceAccessToken", "destinationAccessToken"} <= set(both)
    described = tunnels.describe_tunnel(tunnelId=opened["tunnelId"])["tunnel"]
    assert described["destinationConfig"] == {"thingName": "pump-2", "services": ["VNC", "SSH"]}
    assert error_code(tunnels.rotate_tunnel_access_token, tunnelId=opened["tunnelId"], clientMode="SOURCE",
                      destinationConfig={"services": ["SSH"]}) == "InvalidRequestException"
    assert error_code(tunnels.rotate_tunnel_access_token, tunnelId=opened["tunnelId"], clientMode="BOTH") \
        == "InvalidRequestException"


def test_tags(tunnels):
    arn = tunnels.open_tunnel(tags=[{"key": "a", "value": "1"}])["tunnelArn"]
    tunnels.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "3"}])
    assert sorted(tunnels.list_tags_for_resource(resourceArn=arn)["tags"], key=lambda t: t["key"]) == \
        [{"key": "a", "value": "3"}, {"key": "b", "value": "2"}]
    tunnels.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert tunnels.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    missing = arn.rsplit("/", 1)[0] + "/nope"
    assert error_code(tunnels.tag_resource, resourceArn=missing, tags=[{"key": "x", "value": "y"}]) \
        == "ResourceNotFoundException"
    assert error_code(tunnels.list_tags_for_resource, resourceArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/x") \
        == "ResourceNotFoundException"
    assert error_code(tunnels.tag_resource, resourceArn=arn, tags=[{"key": "aws:x", "value": "y"}]) \
        == "InvalidRequestException"


def test_tunnels_expire_on_the_clock(localiot_server, tunnels):
    short = tunnels.open_tunnel(timeoutConfig={"maxLifetimeTimeoutMinutes": 1})["tunnelId"]
    long = tunnels.open_tunnel(timeoutConfig={"maxLifetimeTimeoutMinutes": 2})["tunnelId"]
    advance(localiot_server, 59)
    assert tunnels.describe_tunnel(tunnelId=short)["tunnel"]["status"] == "OPEN"
    advance(localiot_server, 2)
    assert tunnels.describe_tunnel(tunnelId=short)["tunnel"]["status"] == "CLOSED"
    assert tunnels.describe_tunnel(tunnelId=long)["tunnel"]["status"] == "OPEN"
    advance(localiot_server, 60)
    assert tunnels.describe_tunnel(tunnelId=long)["tunnel"]["status"] == "CLOSED"


def test_notify_reaches_the_destination_thing_under_its_policy(tunnels, devices):
    thing = "pump-7"
    notify = f"$aws/things/{thing}/tunnels/notify"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/$aws/things/{thing}/tunnels/notify"},
        {"Effect": "Allow", "Action": "iot:Receive",
         "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/$aws/things/{thing}/tunnels/notify"}]}
    device = devices.tls(thing, policy=policy)
    assert device.subscribe(notify) == [1]
    denied = "$aws/things/other/tunnels/notify"
    assert device.subscribe(denied)[0] >= 0x80
    opened = tunnels.open_tunnel(destinationConfig={"thingName": thing, "services": ["SSH", "HTTP"]})
    message = json.loads(device.expect(notify).payload)
    assert message == {"clientAccessToken": opened["destinationAccessToken"], "clientMode": "destination",
                       "region": "us-east-1", "services": ["SSH", "HTTP"]}
    rotated = tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"], clientMode="DESTINATION")
    assert json.loads(device.expect(notify).payload)["clientAccessToken"] == rotated["destinationAccessToken"]
    tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"], clientMode="SOURCE")
    tunnels.open_tunnel(destinationConfig={"thingName": "other", "services": ["SSH"]})
    tunnels.open_tunnel()
    device.expect_none()
