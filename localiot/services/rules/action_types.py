"""Every rule action type, registered.

`actions` is the framework and the registry (`ACTIONS`, `@action`);
`actions_messaging` and `actions_storage` register their actions into it.
Whoever needs the full set (the rule API's validation, the engine) asks this
module, so the framework never imports the modules that build on it.
"""

from __future__ import annotations

from localiot.services.rules import actions_messaging, actions_storage
from localiot.services.rules.actions import ACTIONS, ActionType

MODULES = (actions_messaging, actions_storage)  # each registers its actions when imported


def load_all() -> dict[str, ActionType]:
    """Every action type by its key in the Action structure ("sqs", "republish" ...)."""
    return ACTIONS
