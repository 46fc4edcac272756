"""Provisioning templates: the grammar (sections, resource types, properties,
override settings, intrinsic functions), the parsed template and the
ProvisioningPlan types, and the value rules that validation (`template`)
and evaluation (`evaluation`) share: parameter values and constraints and
building a resource's spec from its properties. Pure: no store, no I/O.

The grammar is the AWS IoT Developer Guide's "Provisioning templates" chapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

THING = "AWS::IoT::Thing"
CERTIFICATE = "AWS::IoT::Certificate"
POLICY = "AWS::IoT::Policy"
RESOURCE_TYPES = (THING, CERTIFICATE, POLICY)

SECTIONS = ("Parameters", "Mappings", "Conditions", "Resources", "DeviceConfiguration")
# Sections a template may carry that do not change what gets provisioned.
IGNORED_SECTIONS = ("AWSTemplateFormatVersion", "Version", "Description", "Metadata", "Outputs")

# Filled by the service from the device's certificate (JITP, fleet provisioning:
# localiot.provisioning.parameters); a template may reference them without
# declaring them.
CERTIFICATE_PARAMETER_PREFIX = "AWS::IoT::Certificate::"
NO_VALUE = "AWS::NoValue"
PSEUDO_PARAMETERS = ("AWS::Region", "AWS::AccountId", "AWS::Partition", NO_VALUE)

PARAMETER_TYPES = ("String", "Number", "CommaDelimitedList", "List<Number>")
PARAMETER_KEYS = (
    "Type", "Default", "Description", "AllowedValues", "AllowedPattern", "MinLength", "MaxLength",
    "MinValue", "MaxValue", "ConstraintDescription", "NoEcho",
)
RESOURCE_KEYS = ("Type", "Properties", "OverrideSettings", "Condition")
PROPERTIES = {
    THING: ("ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup", "PackageVersions"),
    CERTIFICATE: ("CertificateId", "CertificatePem", "CACertificatePem", "CertificateSigningRequest", "Status"),
    POLICY: ("PolicyName", "PolicyDocument"),
}
# Older pages of the guide spell these differently; both mean the same property.
PROPERTY_ALIASES = {CERTIFICATE: {"CertificateID": "CertificateId"}}

DO_NOTHING, REPLACE, FAIL, MERGE = "DO_NOTHING", "REPLACE", "FAIL", "MERGE"
OVERRIDABLE = {
    THING: {"AttributePayload": (DO_NOTHING, REPLACE, FAIL, MERGE),
            "ThingTypeName": (DO_NOTHING, REPLACE, FAIL),
            "ThingGroups": (DO_NOTHING, REPLACE, FAIL, MERGE)},
    CERTIFICATE: {"Status": (DO_NOTHING, REPLACE, FAIL)},
}
OVERRIDE_ALIASES = {
    "ATTRIBUTE_PAYLOAD": "AttributePayload",
    "THING_TYPE_NAME": "ThingTypeName",
    "THING_GROUPS": "ThingGroups",
    "STATUS": "Status",
}
CERTIFICATE_STATUSES = ("ACTIVE", "INACTIVE")

FUNCTIONS = (
    "Fn::Join", "Fn::Select", "Fn::Split", "Fn::FindInMap", "Fn::Sub",
    "Fn::If", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or",
)
CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_CERTIFICATE_ID = re.compile(r"^(0x)?[a-fA-F0-9]{64}$")


class TemplateError(ValueError):
    """The template body is not a valid provisioning template."""


class EvaluationError(TemplateError):
    """The template cannot be evaluated with the given parameters."""


# parsed template -------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    constraints: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict
    override_settings: dict
    condition: str | None = None


@dataclass(frozen=True)
class ParsedTemplate:
    body: dict
    parameters: dict[str, Parameter]
    mappings: dict
    conditions: dict
    resources: dict[str, Resource]
    device_configuration: Any
    referenced_parameters: frozenset[str]


# plan ------------------------------------------------------------------------
@dataclass
class ThingSpec:
    logical_id: str
    thing_name: str
    attributes: dict[str, str] | None = None
    thing_type_name: str | None = None
    thing_groups: list[str] | None = None
    billing_group: str | None = None
    package_versions: Any = None
    overrides: dict[str, str] = field(default_factory=dict)
    type: str = THING

    def override(self, prop: str) -> str:
        """What to do with `prop` when the thing already exists (default: leave it)."""
        return self.overrides.get(prop, DO_NOTHING)


@dataclass
class CertificateSpec:
    logical_id: str
    certificate_id: str | None = None
    certificate_pem: str | None = None
    ca_certificate_pem: str | None = None
    certificate_signing_request: str | None = None
    status: str = "ACTIVE"
    overrides: dict[str, str] = field(default_factory=dict)
    type: str = CERTIFICATE

    def override(self, prop: str) -> str:
        """What to do with `prop` of an existing certificate (default: apply the template)."""
        return self.overrides.get(prop, REPLACE)


@dataclass
class PolicySpec:
    logical_id: str
    policy_name: str
    policy_document: str | None = None
    named: bool = True  # False: the name is the hash of the document
    type: str = POLICY


@dataclass
class ProvisioningPlan:
    resources: list
    device_configuration: dict
    parameters: dict[str, Any]

    @property
    def thing(self) -> ThingSpec | None:
        return next((r for r in self.resources if r.type == THING), None)

    @property
    def certificate(self) -> CertificateSpec | None:
        return next((r for r in self.resources if r.type == CERTIFICATE), None)

    @property
    def policies(self) -> list[PolicySpec]:
        return [r for r in self.resources if r.type == POLICY]


# helpers ---------------------------------------------------------------------
def _intrinsic(node, conditions: bool = False) -> str | None:
    """The function name if `node` is an intrinsic function call."""
    if isinstance(node, dict) and len(node) == 1:
        (key,) = node
        if key == "Ref" or key.startswith("Fn::") or (conditions and key == "Condition"):
            return key
    return None


def _has_intrinsic(node) -> bool:
    if isinstance(node, dict):
        return _intrinsic(node) is not None or any(_has_intrinsic(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_intrinsic(v) for v in node)
    return False


def _is_pseudo(name: str) -> bool:
    return name in PSEUDO_PARAMETERS or name.startswith(CERTIFICATE_PARAMETER_PREFIX)


def _scalar_text(value, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    raise EvaluationError(f"{path}: expected a string, got {_describe(value)}")


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _find_in_map(mappings: dict, keys: list, where: str, error=EvaluationError):
    map_name, top, second = keys
    if map_name not in mappings:
        raise error(f"{where}: undefined mapping '{map_name}'")
    if top not in mappings[map_name]:
        raise error(f"{where}: mapping '{map_name}' has no key '{top}'")
    if second not in mappings[map_name][top]:
        raise error(f"{where}: mapping '{map_name}' has no key '{second}' under '{top}'")
    return mappings[map_name][top][second]


# values and resource specs shared by validation and evaluation -------------
def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EvaluationError(f"Parameter '{name}' must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise EvaluationError(f"Parameter '{name}' must be a finite number, got {text!r}")
    return value


def _parameter_value(param: Parameter, raw) -> Any:
    """The value a Ref to `param` resolves to, after type and constraint checks."""
    text = _scalar_text(raw, f"Parameter '{param.name}'") if not isinstance(raw, list) else ",".join(
        _scalar_text(v, f"Parameter '{param.name}'") for v in raw
    )
    c = param.constraints
    if "AllowedValues" in c and text not in [_scalar_text(v, "AllowedValues") for v in c["AllowedValues"]]:
        raise EvaluationError(f"Parameter '{param.name}' must be one of {c['AllowedValues']}, got {text!r}")
    if "AllowedPattern" in c and not re.fullmatch(c["AllowedPattern"], text):
        raise EvaluationError(f"Parameter '{param.name}' must match pattern {c['AllowedPattern']!r}, got {text!r}")
    if "MinLength" in c and len(text) < c["MinLength"]:
        raise EvaluationError(f"Parameter '{param.name}' must be at least {c['MinLength']} characters long")
    if "MaxLength" in c and len(text) > c["MaxLength"]:
        raise EvaluationError(f"Parameter '{param.name}' must be at most {c['MaxLength']} characters long")
    if param.type == "Number" or "MinValue" in c or "MaxValue" in c:
        number = _number(text, param.name)
        if "MinValue" in c and number < c["MinValue"]:
            raise EvaluationError(f"Parameter '{param.name}' must be at least {c['MinValue']}, got {text}")
        if "MaxValue" in c and number > c["MaxValue"]:
            raise EvaluationError(f"Parameter '{param.name}' must be at most {c['MaxValue']}, got {text}")
    if param.type == "CommaDelimitedList":
        return text.split(",")
    if param.type == "List<Number>":
        items = text.split(",")
        for item in items:
            _number(item, param.name)
        return items
    return text


def _optional_text(props: dict, key: str, path: str) -> str | None:
    if props.get(key) is None:
        return None
    text = _scalar_text(props[key], f"{path}.{key}")
    return text or None


def _attributes(value, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise EvaluationError(f"{path}: AttributePayload must be an object of attribute names and values")
    # Accept the API's nesting ({"attributes": {...}}) as well as the guide's flat form.
    if len(value) == 1:
        (key,) = value
        if key in ("attributes", "Attributes") and isinstance(value[key], dict):
            value = value[key]
    return {str(k): _scalar_text(v, f"{path}.{k}") for k, v in value.items()}


def _groups(value, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise EvaluationError(f"{path}: ThingGroups must be a list of thing group names")
    out: list[str] = []
    for i, item in enumerate(value):
        name = _scalar_text(item, f"{path}[{i}]")
        if name and name not in out:
            out.append(name)
    return out


def policy_name_for(document: str) -> str:
    """AWS names a policy declared only by its document after the document's hash."""
    return hashlib.sha1(document.encode()).hexdigest().upper()


def _policy_document(value, path: str) -> str:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    text = _scalar_text(value, path)
    try:
        parsed = json.loads(text)
    except ValueError as e:
        raise EvaluationError(f"{path}: PolicyDocument is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise EvaluationError(f"{path}: PolicyDocument must be a JSON object")
    return text


def _build_spec(kind: str, logical_id: str, props: dict, overrides: dict, partial: bool = False):
    """The spec of one resource from its resolved properties.

    `partial` checks whatever properties are present (validation of literals).
    """
    path = f"Resources.{logical_id}.Properties"
    if kind == THING:
        name = props.get("ThingName")
        if name is None and not partial:
            raise EvaluationError(f"{path}.ThingName: the thing name resolved to no value")
        name = _scalar_text(name, f"{path}.ThingName") if name is not None else ""
        if not partial and not name:
            raise EvaluationError(f"{path}.ThingName: the thing name must not be empty")
        return ThingSpec(
            logical_id=logical_id,
            thing_name=name,
            attributes=_attributes(props["AttributePayload"], f"{path}.AttributePayload")
            if props.get("AttributePayload") is not None else None,
            thing_type_name=_optional_text(props, "ThingTypeName", path),
            thing_groups=_groups(props["ThingGroups"], f"{path}.ThingGroups")
            if props.get("ThingGroups") is not None else None,
            billing_group=_optional_text(props, "BillingGroup", path),
            package_versions=props.get("PackageVersions"),
            overrides=dict(overrides),
        )
    if kind == CERTIFICATE:
        status = (_optional_text(props, "Status", path) or "ACTIVE").upper()
        if status not in CERTIFICATE_STATUSES:
            raise EvaluationError(f"{path}.Status: must be ACTIVE or INACTIVE, got {props['Status']!r}")
        certificate_id = _optional_text(props, "CertificateId", path)
        if certificate_id is not None:
            if not _CERTIFICATE_ID.match(certificate_id):
                raise EvaluationError(f"{path}.CertificateId: {certificate_id!r} is not a certificate ID (64 hex digits)")
            certificate_id = certificate_id.lower().removeprefix("0x")
        if not partial and not any(
            props.get(k) for k in ("CertificateId", "CertificatePem", "CertificateSigningRequest")
        ):
            raise EvaluationError(f"{path}: the certificate resolved to no CertificateId, CertificatePem or CSR")
        return CertificateSpec(
            logical_id=logical_id,
            certificate_id=certificate_id,
            certificate_pem=_optional_text(props, "CertificatePem", path),
            ca_certificate_pem=_optional_text(props, "CACertificatePem", path),
            certificate_signing_request=_optional_text(props, "CertificateSigningRequest", path),
            status=status,
            overrides=dict(overrides),
        )
    document = (
        _policy_document(props["PolicyDocument"], f"{path}.PolicyDocument")
        if props.get("PolicyDocument") is not None else None
    )
    name = _optional_text(props, "PolicyName", path)
    if name is None and document is None and not partial:
        raise EvaluationError(f"{path}: the policy resolved to neither a PolicyName nor a PolicyDocument")
    named = name is not None
    if name is None and document is not None:
        name = policy_name_for(document)
    return PolicySpec(logical_id=logical_id, policy_name=name or "", policy_document=document, named=named)
