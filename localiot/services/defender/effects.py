"""What a mitigation action does to one finding, through the ordinary service
functions: each change runs as its own unit of work named after the real
operation (UpdateCertificate, UpdateCACertificate, AddThingToThingGroup,
CreatePolicyVersion, SetV2LoggingOptions), so what follows such a commit —
the broker disconnecting a deactivated certificate's clients, grants being
recomputed — happens as it would for the API call.

`apply(runtime, account, region, action, finding)` returns (status, errorCode,
message): COMPLETED, SKIPPED (nothing to act on) or FAILED (the service's error).
`start_after_commit(ctx, run, task_id, what)` starts a mitigation task (audit
or detect) once the call that created it committed.
"""

from __future__ import annotations

import asyncio
import json
import logging

from localiot.protocol.errors import ServiceError
from localiot.services.registry.things import PRINCIPALS as THING_PRINCIPAL  # links: thing -> principal ARN
from localiot.services.unit_of_work import run_off_loop, unit_of_work

log = logging.getLogger("localiot.defender")

# BLANK_POLICY: a default version that grants nothing (a policy needs one statement).
BLANK_POLICY = json.dumps({"Version": "2012-10-17",
                           "Statement": [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}]})


def start_after_commit(ctx, run, task_id: str, what: str) -> None:
    """Once the creating call committed, run `run(runtime, account, region, task_id)`
    as a task on the loop (the API answers first), or at once when no loop runs."""
    runtime, account, region = ctx.runtime, ctx.account, ctx.region

    async def in_background() -> None:
        try:
            await run_off_loop(runtime, run, runtime, account, region, task_id)  # PostgreSQL: on a worker
        except Exception:
            log.exception("%s %s failed", what, task_id)

    def start() -> None:
        try:
            asyncio.get_running_loop().create_task(in_background())
        except RuntimeError:
            run(runtime, account, region, task_id)

    ctx.after_commit(start)


def _call(runtime, account, region, operation_name: str, fn, req: dict) -> None:
    with unit_of_work(runtime, account, region, "iot", operation_name) as ctx:
        fn(ctx, req)


def apply(runtime, account: str, region: str, action: dict, finding: dict) -> tuple[str, str | None, str | None]:
    from localiot.services.logging_options.options import set_v2_options
    from localiot.services.registry import thing_groups
    from localiot.services.security import ca_certificates, certificates, policies

    ident = finding["nonCompliantResource"]["resourceIdentifier"]
    params = next(v for v in action["actionParams"].values() if v is not None)
    kind = action["actionType"]
    try:
        if kind == "UPDATE_DEVICE_CERTIFICATE":
            _call(runtime, account, region, "UpdateCertificate", certificates.UpdateCertificate,
                  {"certificateId": ident["deviceCertificateId"], "newStatus": "INACTIVE"})
        elif kind == "UPDATE_CA_CERTIFICATE":
            _call(runtime, account, region, "UpdateCACertificate", ca_certificates.UpdateCACertificate,
                  {"certificateId": ident["caCertificateId"], "newStatus": "INACTIVE"})
        elif kind == "ADD_THINGS_TO_THING_GROUP":
            arn = f"arn:aws:iot:{region}:{account}:cert/{ident['deviceCertificateId']}"
            with unit_of_work(runtime, account, region, "iot", "ListPrincipalThings", write=False) as ctx:
                things = ctx.tx.linked_to(THING_PRINCIPAL, arn)
            if not things:
                return "SKIPPED", None, "No thing is attached to the certificate."
            for group in params["thingGroupNames"]:
                for thing in things:
                    _call(runtime, account, region, "AddThingToThingGroup", thing_groups.AddThingToThingGroup,
                          {"thingGroupName": group, "thingName": thing,
                           "overrideDynamicGroups": bool(params.get("overrideDynamicGroups"))})
        elif kind == "REPLACE_DEFAULT_POLICY_VERSION":
            _call(runtime, account, region, "CreatePolicyVersion", policies.CreatePolicyVersion,
                  {"policyName": ident["policyVersionIdentifier"]["policyName"], "policyDocument": BLANK_POLICY,
                   "setAsDefault": True})
        elif kind == "ENABLE_IOT_LOGGING":
            _call(runtime, account, region, "SetV2LoggingOptions", set_v2_options,
                  {"roleArn": params["roleArnForLogging"], "defaultLogLevel": params["logLevel"],
                   "disableAllLogs": False})
        elif kind == "PUBLISH_FINDING_TO_SNS":
            topic = params["topicArn"]
            runtime.aws_client("sns", topic.split(":")[3]).publish(
                TopicArn=topic, Message=json.dumps(finding, default=str))
        return "COMPLETED", None, None
    except ServiceError as error:
        return "FAILED", error.code, error.message
    except Exception as error:  # noqa: BLE001 - a downstream failure is the execution's failure
        return "FAILED", type(error).__name__, str(error)[:1000]
