"""Provisioning: the template engine (pure: `grammar` and its types, `template`
validation, `evaluation`), the certificate's template parameters
(`parameters`) and carrying a plan out (`apply`).

    from localiot.provisioning import validate_template, evaluate, TemplateError

RegisterThing, JITP and the fleet-provisioning MQTT topics share both.
"""

from localiot.provisioning.grammar import (
    CERTIFICATE,
    POLICY,
    THING,
    CertificateSpec,
    EvaluationError,
    ParsedTemplate,
    PolicySpec,
    ProvisioningPlan,
    TemplateError,
    ThingSpec,
    policy_name_for,
)
from localiot.provisioning.template import validate_template
from localiot.provisioning.evaluation import evaluate

__all__ = [
    "CERTIFICATE",
    "POLICY",
    "THING",
    "CertificateSpec",
    "EvaluationError",
    "ParsedTemplate",
    "PolicySpec",
    "ProvisioningPlan",
    "TemplateError",
    "ThingSpec",
    "evaluate",
    "policy_name_for",
    "validate_template",
]
