"""What the dashboard's pages show, each a dict built from API operations
(localiot.fleethub_web.calls): the fleet search, one device, the jobs."""

from __future__ import annotations

import json

from localiot.fleethub_web.calls import Scope, call, optional, shadow
from localiot.protocol.errors import ServiceError
from localiot.services import presence
from localiot.services.defender import history
from localiot.services.unit_of_work import read_only

PAGE_SIZE = 25
HISTORY_SIZE = 20
MAX_PAGES = 20
DEFAULT_QUERY = "thingName:*"


def application(app, scope: Scope) -> dict:
    doc = scope.application
    return {"applicationId": doc["applicationId"], "applicationName": doc["applicationName"],
            "applicationDescription": doc.get("applicationDescription"),
            "account": scope.account, "region": scope.region}


def search(app, scope: Scope, query: dict) -> dict:
    """One page of SearchIndex on AWS_Things, in the fleet-indexing query language."""
    params = {"indexName": "AWS_Things", "queryString": query.get("q") or DEFAULT_QUERY,
              "maxResults": PAGE_SIZE}
    if query.get("next"):
        params["nextToken"] = query["next"]
    found = call(app, scope, "iot", "SearchIndex", params)
    things = []
    for thing in found.get("things", []):
        row = {k: thing.get(k) for k in ("thingName", "thingTypeName", "attributes", "connectivity",
                                         "thingGroupNames")}
        row["shadow"] = json.loads(thing["shadow"]) if thing.get("shadow") else None
        things.append(row)
    return {"queryString": params["queryString"], "things": things, "nextToken": found.get("nextToken")}


def thing(app, scope: Scope, name: str) -> dict:
    """Everything the device page shows: registry, groups, connectivity, shadows, jobs."""
    described = call(app, scope, "iot", "DescribeThing", {"thingName": name})
    groups = call(app, scope, "iot", "ListThingGroupsForThing", {"thingName": name, "maxResults": 250})
    named = optional(app, scope, "iot-data", "ListNamedShadowsForThing", {"thingName": name, "pageSize": 100},
                     {"results": []})
    executions = call(app, scope, "iot", "ListJobExecutionsForThing", {"thingName": name, "maxResults": 50})
    violations = optional(app, scope, "iot", "ListActiveViolations", {"thingName": name, "maxResults": 250},
                          {"activeViolations": []})
    return {
        "thing": {k: described.get(k) for k in ("thingName", "thingArn", "thingId", "thingTypeName",
                                                 "attributes", "version", "billingGroupName")},
        "groups": [g["groupName"] for g in groups.get("thingGroups", [])],
        "connectivity": optional(app, scope, "iot", "GetThingConnectivityData", {"thingName": name}, None),
        "shadow": shadow(app, scope, name),
        "namedShadows": {n: shadow(app, scope, name, n) for n in named.get("results", [])},
        "jobs": [{"jobId": e["jobId"], **e["jobExecutionSummary"]} for e in executions.get("executionSummaries", [])],
        "violations": [_violation(v) for v in violations["activeViolations"]],
        "connections": connection_history(app, scope, name),
    }


def connection_history(app, scope: Scope, client_id: str, limit: int = HISTORY_SIZE) -> list[dict]:
    """The latest connections of `client_id` (a thing's client id is its name), newest first, from the
    connection history the broker's presence events feed (localiot.services.defender.history), with the
    records the history still holds back written first."""
    presence.flush(app.runtime)
    with read_only(app.runtime, scope.account, scope.region, "iot", "FleetHubConnections") as ctx:
        rows = history.records_of(ctx.tx, client_id)
    rows.sort(key=lambda d: d.get("connectedAt") or 0, reverse=True)
    return [{k: d.get(k) for k in ("connectedAt", "disconnectedAt", "disconnectReason", "ipAddress")}
            for d in rows[:limit]]


def _violation(v: dict) -> dict:
    behavior = v.get("behavior") or {}
    criteria = behavior.get("criteria") or {}
    kind = ("MACHINE_LEARNING" if criteria.get("mlDetectionConfig")
            else "STATISTICAL" if criteria.get("statisticalThreshold") else "STATIC")
    return {"violationId": v["violationId"], "thingName": v["thingName"],
            "securityProfileName": v["securityProfileName"], "behaviorName": behavior.get("name"),
            "metric": behavior.get("metric"), "criteriaType": kind, "value": v.get("lastViolationValue"),
            "since": v.get("violationStartTime"), "lastViolationTime": v.get("lastViolationTime"),
            "verificationState": v.get("verificationState")}


def alarms(app, scope: Scope) -> dict:
    """The alarms view: Device Defender's active violations and each fleet metric's current value."""
    found, token = [], None
    for _ in range(MAX_PAGES):
        params = {"maxResults": 250, **({"nextToken": token} if token else {})}
        page = optional(app, scope, "iot", "ListActiveViolations", params, {"activeViolations": []})
        found += page["activeViolations"]
        token = page.get("nextToken")
        if not token:
            break
    listed = optional(app, scope, "iot", "ListFleetMetrics", {"maxResults": 250}, {"fleetMetrics": []})
    metrics = [_fleet_metric(app, scope, m["metricName"]) for m in listed["fleetMetrics"]]
    return {"violations": [_violation(v) for v in found], "fleetMetrics": metrics}


def _fleet_metric(app, scope: Scope, name: str) -> dict:
    """A fleet metric and its value now: the aggregation it sends to CloudWatch every period, evaluated
    with the same fleet-indexing operation (GetStatistics, GetCardinality, GetPercentiles)."""
    doc = call(app, scope, "iot", "DescribeFleetMetric", {"metricName": name})
    kind = doc["aggregationType"]["name"]
    out = {k: doc.get(k) for k in ("metricName", "queryString", "aggregationField", "period", "unit", "indexName")}
    out["aggregationType"] = kind
    params = {k: doc[k] for k in ("queryString", "aggregationField", "indexName", "queryVersion") if doc.get(k)}
    try:
        if kind == "Cardinality":
            out["value"] = call(app, scope, "iot", "GetCardinality", params)["cardinality"]
        elif kind == "Percentiles":
            values = doc["aggregationType"].get("values")
            got = call(app, scope, "iot", "GetPercentiles",
                       {**params, **({"percents": [float(v) for v in values]} if values else {})})
            out["value"] = {f"p{p['percent']:g}": p.get("value") for p in got.get("percentiles", [])}
        else:
            stats = call(app, scope, "iot", "GetStatistics", params)["statistics"]
            wanted = doc["aggregationType"].get("values") or ["count"]
            out["value"] = {k: stats.get(k) for k in wanted}
    except ServiceError as error:
        out["error"] = f"{error.code}: {error.message}"
    return out


def jobs(app, scope: Scope) -> dict:
    listed = call(app, scope, "iot", "ListJobs", {"maxResults": 100})
    return {"jobs": listed.get("jobs", [])}


def job(app, scope: Scope, job_id: str) -> dict:
    described = call(app, scope, "iot", "DescribeJob", {"jobId": job_id})["job"]
    executions = call(app, scope, "iot", "ListJobExecutionsForJob", {"jobId": job_id, "maxResults": 250})
    return {"job": {k: described.get(k) for k in ("jobId", "jobArn", "status", "targets", "description",
                                                  "createdAt", "lastUpdatedAt", "completedAt",
                                                  "jobProcessDetails", "targetSelection")},
            "executions": [{"thingName": e["thingArn"].rsplit("/", 1)[-1], **e["jobExecutionSummary"]}
                           for e in executions.get("executionSummaries", [])]}


def create_job(app, scope: Scope, body: dict) -> dict:
    """CreateJob on the things the operator picked, with the document typed in the page."""
    things = body.get("things") or []
    targets = [call(app, scope, "iot", "DescribeThing", {"thingName": t})["thingArn"] for t in things]
    params = {"jobId": body.get("jobId") or "", "targets": targets, "document": body.get("document") or "",
              "targetSelection": "SNAPSHOT"}
    if body.get("description"):
        params["description"] = body["description"]
    created = call(app, scope, "iot", "CreateJob", params)
    return {"jobId": created["jobId"], "jobArn": created["jobArn"]}
