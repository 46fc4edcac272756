"""What a handler gets besides its input: the caller's scope, the transaction, time, events."""

from __future__ import annotations

from dataclasses import dataclass, field

from localiot.clock import Clock
from localiot.config import Config
from localiot.protocol import jsontext
from localiot.runtime import Runtime

_affects = None  # localiot.services.affects, once imported


@dataclass(init=False)
class RequestContext:
    account: str
    region: str
    tx: object  # localiot.store.Tx
    runtime: Runtime
    service: str = "iot"
    operation: str = ""
    events: list[tuple[str, bytes]] = field(default_factory=list)
    # Made by the first before_commit / after_commit (most units ask for neither).
    before_commit_hooks: list | None = None
    after_commit_hooks: list | None = None
    extra_affects: object = None  # Affects the work added beyond its operation's declaration

    def __init__(self, account: str, region: str, tx, runtime: Runtime, service: str = "iot", operation: str = "",
                 events: list | None = None, before_commit_hooks: list | None = None,
                 after_commit_hooks: list | None = None, extra_affects=None):
        # Written out, not the dataclass's: one per unit of work (every API call), and its
        # default_factory calls were a fifth of the unit's fixed cost. (Subclasses that are
        # dataclasses, such as jobs' TickContext, get a generated one with these fields.)
        self.account, self.region, self.tx, self.runtime = account, region, tx, runtime
        self.service, self.operation = service, operation
        self.events = [] if events is None else events
        self.before_commit_hooks, self.after_commit_hooks = before_commit_hooks, after_commit_hooks
        self.extra_affects = extra_affects

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def config(self) -> Config:
        return self.runtime.config

    def now(self) -> float:
        return self.clock.now()

    def arn(self, resource: str, service: str = "iot") -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    @property
    def affects(self):
        """What the committed operation may have changed for connected devices
        (declared on its @operation decorator)."""
        global _affects
        if _affects is None:  # imported late: localiot.services imports this module
            from localiot.services import affects as _affects
        declared = _affects(self.service, self.operation)
        return declared | self.extra_affects if self.extra_affects else declared

    def also_affects(self, what) -> None:
        """Declare that this run changed more for connected devices than its operation
        declares (a shadow update that moved a thing into a dynamic group with a policy)."""
        self.extra_affects = what if self.extra_affects is None else self.extra_affects | what

    def before_commit(self, fn) -> None:
        """Run `fn()` at the end of the unit of work, inside its transaction."""
        if self.before_commit_hooks is None:
            self.before_commit_hooks = [fn]
        else:
            self.before_commit_hooks.append(fn)

    def after_commit(self, fn) -> None:
        """Run `fn()` once the unit of work committed (never if it rolled back)."""
        if self.after_commit_hooks is None:
            self.after_commit_hooks = [fn]
        else:
            self.after_commit_hooks.append(fn)

    def publish(self, topic: str, payload: dict) -> None:
        """Queue an event; it reaches the bus only if the call's transaction commits."""
        self.events.append((topic, jsontext.dumps(payload)))

    def publish_json(self, topic: str, payload: bytes) -> None:
        """`publish` of a payload already written as publish writes it (jsontext.dumps)."""
        self.events.append((topic, payload))
