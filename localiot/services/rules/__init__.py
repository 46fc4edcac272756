"""The rules engine family: topic rules, HTTP and VPC rule destinations, and the
engine that runs rules on every message of the bus.

Modules: `topic_rules` (the rule API and its validation), `destinations`
(topic rule destinations and the HTTP confirmation handshake), `engine`
(matching, SQL evaluation, action dispatch off the event loop, error
actions, Basic Ingest), `actions` (the action framework) with the actions
themselves in `actions_messaging` and `actions_storage`.

The API and the engine share nothing but the store: every change to a rule
or destination bumps a generation document, and the engine recompiles a
scope's rules when it sees a new generation.
"""
