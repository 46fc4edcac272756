"""Policy checks: IoT policies (default versions) with AWS's documented
criteria, role aliases and Cognito identity pool roles with their IAM
policies read from the downstream endpoint, and logging.

IOT_POLICY_OVERLY_PERMISSIVE_CHECK (ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS):
an Allow statement grants a data-plane action (iot:*, *, iot:Connect, Publish,
Subscribe, Receive, RetainPublish, the shadow and job-execution actions, or
an action pattern matching one) on a resource whose name is a wildcard not
scoped by a policy variable before it (`*`, `client/*`, `topic/sensors/*`;
`topic/${iot:ClientId}/*` is scoped).
IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK: a Deny statement names a topic
or topic filter with MQTT wildcards `#`/`+` (policy resources match them
literally: POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT); or a Deny on
specific topic filters while an Allow on a topic filter with MQTT wildcards
still lets a client subscribe to them
(TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS).
"""

from __future__ import annotations

import fnmatch
import json

from localiot.services.defender.checks_certs import finding
from localiot.services.logging_options.levels import logging_enabled

POLICY, ROLE_ALIAS = "policy", "rolealias"
DATA_PLANE = ("iot:connect", "iot:publish", "iot:subscribe", "iot:receive", "iot:retainpublish",
              "iot:getthingshadow", "iot:updatethingshadow", "iot:deletethingshadow",
              "iot:describejobexecution", "iot:getpendingjobexecutions", "iot:startnextpendingjobexecution",
              "iot:updatejobexecution")
AUDITING_SERVICES = ("iam", "cloudtrail", "guardduty", "inspector", "trustedadvisor")


def _list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(document: str | dict) -> list[dict]:
    doc = json.loads(document) if isinstance(document, str) else document
    return [s for s in _list(doc.get("Statement")) if isinstance(s, dict)]


def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action, pattern.lower())


def _broad(resource: str) -> bool:
    """A resource whose name is a wildcard not scoped by a policy variable first."""
    if resource == "*":
        return True
    name = resource.split(":", 5)[5] if resource.count(":") >= 5 else resource
    _, _, name = name.partition("/") if "/" in name else ("", "", name)
    star = name.find("*")
    if star < 0:
        return False
    return "${" not in name[:star]


def _policy_resource(name: str, version: str) -> dict:
    return {"resourceType": "IOT_POLICY",
            "resourceIdentifier": {"policyVersionIdentifier": {"policyName": name, "policyVersionId": version}}}


def _default(doc: dict) -> tuple[str, str]:
    version = doc["defaultVersionId"]
    return str(version), doc["versions"][version]["document"]


def overly_permissive(audit) -> tuple[int, list]:
    out, total = [], 0
    for name, doc in audit.tx.scan(POLICY):
        total += 1
        version, text = _default(doc)
        for s in statements(text):
            if s.get("Effect") != "Allow":
                continue
            actions = [a.lower() for a in _list(s.get("Action")) if isinstance(a, str)]
            granted = [d for d in DATA_PLANE if any(_matches(a, d) for a in actions)]
            broad = [r for r in _list(s.get("Resource")) if isinstance(r, str) and _broad(r)]
            if granted and broad:
                out.append(finding(_policy_resource(name, version),
                                   "Policy allows broad access to IoT data plane actions: "
                                   f"{', '.join(sorted(set(actions)))} on {', '.join(broad)}.",
                                   "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"))
                break
    return total, out


def _topic_names(resources, kinds=("topic", "topicfilter")) -> list[tuple[str, str]]:
    out = []
    for r in resources:
        if isinstance(r, str) and r.count(":") >= 5:
            kind, _, name = r.split(":", 5)[5].partition("/")
            if kind in kinds:
                out.append((kind, name))
    return out


def _mqtt_match(topic_filter: str, topic: str) -> bool:
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def misconfiguration(audit) -> tuple[int, list]:
    out, total = [], 0
    for name, doc in audit.tx.scan(POLICY):
        total += 1
        version, text = _default(doc)
        stmts = statements(text)
        denies = [s for s in stmts if s.get("Effect") == "Deny"]
        allowed_filters = [n for s in stmts if s.get("Effect") == "Allow"
                           for kind, n in _topic_names(_list(s.get("Resource")), ("topicfilter",))]
        code = reason = None
        for s in denies:
            names = _topic_names(_list(s.get("Resource")))
            if any("#" in n or "+" in n for _, n in names):
                code, reason = ("POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
                                "Deny statement uses MQTT wildcards, which policies match literally.")
                break
            for kind, denied in names:
                if kind == "topicfilter" and any(f != denied and ("#" in f or "+" in f) and _mqtt_match(f, denied)
                                                 for f in allowed_filters):
                    code, reason = ("TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS",
                                    f"Topic filter {denied} is denied but an allowed wildcard topic filter covers it.")
                    break
            if code:
                break
        if code:
            out.append(finding(_policy_resource(name, version), reason, code))
    return total, out


def logging_disabled(audit) -> tuple[int, list]:
    if logging_enabled(audit.tx):
        return 1, []
    resource = {"resourceType": "ACCOUNT_SETTINGS", "resourceIdentifier": {"account": audit.tx.account}}
    return 1, [finding(resource, "Logging is disabled.", "LOGGING_DISABLED")]


# IAM roles at the downstream endpoint -----------------------------------------------
def iam_statements(iam, role_arn: str) -> list[dict]:
    """The Allow statements of every policy of an IAM role (attached and inline)."""
    role = role_arn.split("/")[-1]
    out = []
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        doc = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        out += statements(_decoded(doc))
    for inline in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        out += statements(_decoded(iam.get_role_policy(RoleName=role, PolicyName=inline)["PolicyDocument"]))
    return [s for s in out if s.get("Effect") == "Allow"]


def _decoded(doc):
    if isinstance(doc, str):
        from urllib.parse import unquote

        return json.loads(unquote(doc))
    return doc


def role_problems(stmts: list[dict]) -> tuple[str, str] | None:
    """(reason code, reason) for an overly permissive role, or None."""
    for s in stmts:
        actions = [a.lower() for a in _list(s.get("Action")) if isinstance(a, str)]
        resources = [r for r in _list(s.get("Resource")) if isinstance(r, str)]
        auditing = [a for a in actions if a == "*" or a.split(":")[0] in AUDITING_SERVICES]
        if auditing:
            return "ALLOWS_ACCESS_TO_SECURITY_AUDITING_SERVICES", f"Role allows {', '.join(auditing)}."
        admin = [a for a in actions if a.endswith(":*")]
        if admin:
            return "ALLOWS_BROAD_ACCESS_TO_USED_SERVICES", f"Role allows administrative access: {', '.join(admin)}."
        data = [a for a in actions if any(_matches(a, d) for d in DATA_PLANE)]
        if data and any(_broad(r) for r in resources):
            return "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS", f"Role allows {', '.join(data)} on broad resources."
    return None


def gather_role_aliases(runtime, aliases: list[dict], region: str) -> list[tuple[dict, list | Exception]]:
    """[(role alias doc, Allow statements or the downstream error)], read outside the loop."""
    out = []
    if not aliases:
        return out
    iam = runtime.aws_client("iam", region)
    for doc in aliases:
        try:
            out.append((doc, iam_statements(iam, doc["roleArn"])))
        except Exception as error:  # noqa: BLE001 - reported as the check's failure
            out.append((doc, error))
    return out


def _alias_resource(doc: dict) -> dict:
    return {"resourceType": "ROLE_ALIAS", "resourceIdentifier": {"roleAliasArn": doc["roleAliasArn"]}}


def role_alias_overly_permissive(audit) -> tuple[int, list]:
    out = []
    for doc, stmts in audit.downstream["role_aliases"]:
        if isinstance(stmts, Exception):
            raise stmts
        problem = role_problems(stmts)
        if problem:
            related = [{"resourceType": "IAM_ROLE", "resourceIdentifier": {"iamRoleArn": doc["roleArn"]}}]
            out.append(finding(_alias_resource(doc), problem[1], problem[0], related))
    return len(audit.downstream["role_aliases"]), out


def role_alias_unused_services(audit) -> tuple[int, list]:
    """Services the role allows that no credentials of the role alias used: AWS reads IAM's
    service-last-accessed data; the downstream endpoint must provide it."""
    aliases = audit.downstream["role_aliases"]
    out = []
    for doc, stmts in aliases:
        if isinstance(stmts, Exception):
            raise stmts
        unused = audit.downstream["unused"].get(doc["roleArn"])
        if isinstance(unused, Exception):
            raise unused
        if unused:
            related = [{"resourceType": "IAM_ROLE", "resourceIdentifier": {"iamRoleArn": doc["roleArn"]}}]
            out.append(finding(_alias_resource(doc), f"Role allows unused services: {', '.join(unused)}.",
                               "ALLOWS_ACCESS_TO_UNUSED_SERVICES", related))
    return len(aliases), out


def gather_unused(runtime, region: str, aliases) -> dict:
    out = {}
    if not aliases:
        return out
    iam = runtime.aws_client("iam", region)
    for doc, stmts in aliases:
        if isinstance(stmts, Exception):
            continue
        try:
            job = iam.generate_service_last_accessed_details(Arn=doc["roleArn"])["JobId"]
            details = iam.get_service_last_accessed_details(JobId=job)["ServicesLastAccessed"]
            out[doc["roleArn"]] = sorted(d["ServiceNamespace"] for d in details if not d.get("LastAuthenticated"))
        except Exception as error:  # noqa: BLE001
            out[doc["roleArn"]] = error
    return out


def gather_cognito(runtime, region: str) -> list | Exception:
    """[(identity pool id, role kind, role ARN, Allow statements)] from Cognito and IAM downstream."""
    try:
        cognito = runtime.aws_client("cognito-identity", region)
        pools = cognito.list_identity_pools(MaxResults=60)["IdentityPools"]
        if not pools:
            return []
        iam = runtime.aws_client("iam", region)
        out = []
        for pool in pools:
            roles = cognito.get_identity_pool_roles(IdentityPoolId=pool["IdentityPoolId"]).get("Roles", {})
            for kind, arn in roles.items():
                out.append((pool["IdentityPoolId"], kind, arn, iam_statements(iam, arn)))
        return out
    except Exception as error:  # noqa: BLE001
        return error


def _cognito(audit, kind: str) -> tuple[int, list]:
    pools = audit.downstream["cognito"]
    if isinstance(pools, Exception):
        raise pools
    out = []
    for pool_id, role_kind, arn, stmts in pools:
        if role_kind != kind:
            continue
        problem = role_problems(stmts)
        if problem:
            resource = {"resourceType": "COGNITO_IDENTITY_POOL", "resourceIdentifier": {"cognitoIdentityPoolId": pool_id}}
            related = [{"resourceType": "IAM_ROLE", "resourceIdentifier": {"iamRoleArn": arn}}]
            out.append(finding(resource, problem[1], problem[0], related))
    return len([p for p in pools if p[1] == kind]), out


def authenticated_cognito(audit) -> tuple[int, list]:
    return _cognito(audit, "authenticated")


def unauthenticated_cognito(audit) -> tuple[int, list]:
    return _cognito(audit, "unauthenticated")
