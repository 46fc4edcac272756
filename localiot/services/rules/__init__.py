"""The rules engine family: topic rules, HTTP and VPC rule destinations, and the
engine that runs rules on every message of the bus.

Modules: `topic_rules` (the rule API and its validation), `destinations`
(topic rule destinations and the HTTP confirmation handshake), `engine`
(matching, SQL evaluation, action dispatch off the event loop, error
actions, Basic Ingest), `documents` (the store kinds and indexes they
share), `actions` (the action framework and registry) with the actions
themselves in `actions_messaging` and `actions_storage`, all registered by
`action_types`.

The APIs and the engine do not import each other. The engine keeps each
scope's rules compiled and reads nothing from the store per message; once a
unit of work that changed a rule or destination commits, `documents.changed`
tells the engine the runtime holds (`runtime.rules`) that the scope is stale.
"""
