"""What the rules family keeps in the store, and what its modules share about it.

Topic rules are `topicrule` documents (by name), rule destinations
`ruledestination` documents (by ARN). The rule API (`topic_rules`), the
destination API (`destinations`) and the engine import this module, never
each other.

The engine trusts its compiled rules of a scope (no store read per
message) until `changed(ctx)` tells it, once the unit of work that changed
a rule or destination has committed, through the engine the runtime holds
(`runtime.rules`). A change that rolls back tells nobody.
"""

from __future__ import annotations

RULE_KIND = "topicrule"
DESTINATION_KIND = "ruledestination"
RULE_TOPIC_INDEX = "topic"  # the rule's FROM topic filter (ListTopicRules' topic)
RULE_DISABLED_INDEX = "disabled"  # "true" / "false"
RULE_VPC_DESTINATION_INDEX = "vpcDestination"  # ARNs of the VPC destinations its Kafka actions use


def changed(ctx, account: str | None = None, region: str | None = None) -> None:
    """The rules or destinations of (account, region) (the unit of work's own scope by
    default) change in this unit of work: once it commits, the engine recompiles them."""
    scope = (account or ctx.account, region or ctx.region)
    runtime = ctx.runtime

    def tell_engine():
        engine = runtime.rules
        if engine is not None:
            engine.stale(*scope)

    ctx.after_commit(tell_engine)


def rules_using_destination(tx, destination_arn: str) -> list[str]:
    """Names of the rules whose Kafka actions send through a VPC destination."""
    return [name for name, _ in tx.find(RULE_KIND, RULE_VPC_DESTINATION_INDEX, destination_arn)]


def enabled_urls(tx) -> tuple[str, ...]:
    """Confirmation URLs of the ENABLED HTTP destinations: what HTTP actions may send to."""
    return tuple(doc["confirmationUrl"] for _, doc in tx.scan(DESTINATION_KIND)
                 if doc["type"] == "http" and doc["status"] == "ENABLED")
