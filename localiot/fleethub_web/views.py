"""What the dashboard's pages show, each a dict built from API operations
(localiot.fleethub_web.calls): the fleet search, one device, the jobs."""

from __future__ import annotations

import json

from localiot.fleethub_web.calls import Scope, call, optional, shadow

PAGE_SIZE = 25
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
    return {
        "thing": {k: described.get(k) for k in ("thingName", "thingArn", "thingId", "thingTypeName",
                                                 "attributes", "version", "billingGroupName")},
        "groups": [g["groupName"] for g in groups.get("thingGroups", [])],
        "connectivity": optional(app, scope, "iot", "GetThingConnectivityData", {"thingName": name}, None),
        "shadow": shadow(app, scope, name),
        "namedShadows": {n: shadow(app, scope, name, n) for n in named.get("results", [])},
        "jobs": [{"jobId": e["jobId"], **e["jobExecutionSummary"]} for e in executions.get("executionSummaries", [])],
    }


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
