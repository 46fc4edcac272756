"""AWS IoT policies: document grammar (`document`) and evaluation (`evaluator`).

    from localiot.policy import parse_policy, compile_policies, PolicyError

    parse_policy(text)                        # -> PolicyDocument, or raises PolicyError
    policies = compile_policies([(name, text), ...])
    decision = policies.evaluate("iot:Publish", topic_arn, variables)
    decision.allowed, decision.explicit_deny, decision.matched

The broker compiles the effective policies of a connection once and calls
`is_allowed` / `evaluate` on CONNECT, PUBLISH, SUBSCRIBE and RECEIVE.
"""

from localiot.policy.certificate_variables import certificate_variables
from localiot.policy.document import PolicyDocument, PolicyError, Statement, parse_policy
from localiot.policy.evaluator import (
    CompiledPolicySet,
    Decision,
    MatchedStatement,
    Variables,
    compile_policies,
    evaluate,
)

__all__ = [
    "CompiledPolicySet",
    "Decision",
    "MatchedStatement",
    "PolicyDocument",
    "PolicyError",
    "Statement",
    "Variables",
    "certificate_variables",
    "compile_policies",
    "evaluate",
    "parse_policy",
]
