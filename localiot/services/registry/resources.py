"""Registry resources other registry modules refer to, declared below the
modules that operate on them so those modules need not import each other
(a thing names its billing group; billing groups move things).
"""

from __future__ import annotations

from localiot.services.common import Resource

BILLING_GROUP = Resource(
    "billinggroup", "billinggroup/{name}",
    not_found="Billing Group {name} cannot be found.",
    exists="Billing Group {name} already exists in current account with different properties",
    id_field="billingGroupId", arn_field="billingGroupArn", taggable=True,
)
