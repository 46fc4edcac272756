"""Keeping the fleet index fresh: it follows every write in the same unit of
work, from the store's record of what the transaction changed.

At the end of every unit of work (hooks.UNIT_ENDING, inside its
transaction) the things touched by `ctx.tx.changes` are indexed again: a
thing written or deleted, a shadow (classic or named) updated or deleted, a
connectivity record stored (presence events), a group membership link made
or removed; thing groups likewise for AWS_ThingGroups. So a call's changes
and the index commit together: a SearchIndex right after a successful call
sees them, and a SIGKILL never leaves the index behind the registry.
Dynamic thing groups are evaluated on the same pass (membership follows the
thing's new index document).

Turning indexing on builds the index from the store in batches
(`build_step`): the first inside UpdateIndexingConfiguration, the rest on
the loop right after, and a periodic job resumes an unfinished build after
a restart. The index reads BUILDING / REBUILDING until done.
"""

from __future__ import annotations

import asyncio
import logging

from localiot.background import periodic
from localiot.indexing import document, fields
from localiot.indexing.evaluate import as_number, compile_query, text
from localiot.indexing.plan import grams, grams_key, has_grams, numeric_key, reversed_key, sortable
from localiot.indexing.query import QueryError, parse
from localiot.services import hooks
from localiot.services.indexing import entry_changes, membership, replies, settings  # noqa: F401 (replies: stored with each put)
from localiot.services.registry.things import KIND as THING, MEMBER_OF
from localiot.services.unit_of_work import unit_of_work

log = logging.getLogger("localiot.indexing")

SHADOW = "shadow"
NAMED_SHADOWS = "named"  # the shadow family's index key: thing name of live named shadows
CONNECTIVITY = "thing-connectivity"
GROUP = "thinggroup"
VIOLATION = "detect-violation"  # the Defender family's violations (index "thing"): deviceDefender.*
DYNAMIC = "dynamic-group-query"  # one per dynamic thing group: its query and state
BATCH = 1000


def entries(flat: dict[str, list], index: str = fields.THINGS) -> dict[str, list[str]]:
    """Index entries of a flattened document (localiot.indexing.plan): each value's text,
    each number's ordered form under the field's numeric key, and each text backwards
    under the field's reversed key (but for managed Number and Boolean fields, which
    take no wildcards), and the trigrams of the texts of fields that have them."""
    out = {}
    for field, values in flat.items():
        texts = out[field] = sorted({text(v) for v in values})
        numbers = {sortable(n) for n in (as_number(v) for v in values) if n is not None}
        if numbers:
            out[numeric_key(field)] = sorted(numbers)
        if fields.managed_type(index, field) not in _NO_WILDCARDS:
            out[reversed_key(field)] = [t[::-1] for t in texts]
            if has_grams(field):
                found = set().union(*(grams(t) for t in texts))
                if found:
                    out[grams_key(field)] = sorted(found)
    return out


_NO_WILDCARDS = ("Number", "Boolean")


# one thing / one group -----------------------------------------------------------
def reindex_thing(ctx, tx, config: dict, name: str) -> None:
    thing = tx.get(THING, name)
    if thing is None:
        tx.delete(settings.THING_INDEX, name)
        return
    part = config["thing"]
    groups = tx.linked_to(MEMBER_OF, name)
    classic = named = connectivity = None
    if part.get("thingIndexingMode") == "REGISTRY_AND_SHADOW":
        classic = tx.get(SHADOW, f"{name}/")
        if classic is not None and classic.get("deletedAt") is not None:
            classic = None
    if part.get("namedShadowIndexingMode") == "ON":
        named = {doc["shadowName"]: doc for _, doc in tx.find(SHADOW, NAMED_SHADOWS, name)}
    if part.get("thingConnectivityIndexingMode") == "STATUS":
        connectivity = tx.get(CONNECTIVITY, name)
    defender = None
    if part.get("deviceDefenderIndexingMode") == "VIOLATIONS":
        defender = document.defender_view(doc for _, doc in tx.find(VIOLATION, "thing", name))
    entry = document.build(thing, groups, part, classic=classic, named=named, connectivity=connectivity,
                           defender=defender)
    _store(tx, config, settings.THING_INDEX, name, entry, fields.THINGS)
    _follow_dynamic_groups(ctx, tx, config, thing, entry, groups)


def _store(tx, config: dict, kind: str, name: str, entry: dict, index: str) -> None:
    """Write an indexed document: nothing when it is as stored (a write that changed
    nothing indexed), only the entries that changed when its entries are current
    (entry_changes), else the document and all its entries."""
    old = tx.get(kind, name)
    if old == entry:
        return
    if old is not None and settings.current_entries(config, index):
        entry_changes.put_changed(tx, kind, name, entry, old["fields"], lambda flat: entries(flat, index))
    else:
        tx.put(kind, name, entry, entries(entry["fields"], index))


def reindex_group(tx, name: str, config: dict | None = None) -> None:
    group = tx.get(GROUP, name)
    if group is None:
        tx.delete(settings.GROUP_INDEX, name)
        return
    entry = document.build_group(group)
    if config is None:
        tx.put(settings.GROUP_INDEX, name, entry, entries(entry["fields"], fields.THING_GROUPS))
    else:
        _store(tx, config, settings.GROUP_INDEX, name, entry, fields.THING_GROUPS)


def predicate(config: dict, query: str, index: str = fields.THINGS):
    custom = settings.custom_types(config, index)
    return compile_query(parse(query, index, custom), index, custom)


def _follow_dynamic_groups(ctx, tx, config: dict, thing: dict, entry: dict, groups: list[str]) -> None:
    dynamic = tx.scan(DYNAMIC)
    if not dynamic:
        return
    name = thing["thingName"]
    for group_name, spec in dynamic:
        try:
            matches = predicate(config, spec["queryString"])(entry["fields"])
        except QueryError:
            continue
        member = group_name in groups
        if matches == member:
            continue
        group = tx.get(GROUP, group_name)
        if group is None:
            continue
        if matches:
            membership.join(ctx, tx, group, thing)
        else:
            membership.leave(ctx, tx, group, name)


# following a unit of work ------------------------------------------------------------
def _indexed(config: dict, kind: str, name: str) -> bool:
    """Whether a change to this `kind` document can change a thing's index document under
    `config` (a shadow when shadows are indexed, connectivity when it is...): the others
    are not followed (a shadow update with thingIndexingMode REGISTRY rewrote the thing's
    index document as it was)."""
    part = config["thing"]
    if kind == SHADOW:
        thing, _, shadow_name = name.partition("/")
        if not shadow_name:
            return part.get("thingIndexingMode") == "REGISTRY_AND_SHADOW"
        wanted = (part.get("filter") or {}).get("namedShadowNames")
        return part.get("namedShadowIndexingMode") == "ON" and (wanted is None or shadow_name in wanted)
    if kind == CONNECTIVITY:
        return part.get("thingConnectivityIndexingMode") == "STATUS"
    if kind == VIOLATION:
        return part.get("deviceDefenderIndexingMode") == "VIOLATIONS"
    return True


def _config(tx, configs: dict, scope: tuple):
    config = configs.get(scope)
    if config is None:
        config = configs[scope] = settings.load(tx if scope == (tx.account, tx.region) else tx.scope(*scope))
    return config


def _affected(tx, changes, configs: dict) -> tuple[dict, dict]:
    things: dict[tuple[str, str], set] = {}
    groups: dict[tuple[str, str], set] = {}
    for change in changes:
        if change[0] == "doc":
            _, account, region, kind, name = change
            if kind == THING:
                things.setdefault((account, region), set()).add(name)
            elif kind == GROUP:
                groups.setdefault((account, region), set()).add(name)
            elif kind in (SHADOW, CONNECTIVITY, VIOLATION):
                if not _indexed(_config(tx, configs, (account, region)), kind, name):
                    continue
                if kind == VIOLATION:  # named by violation id: the document names the thing
                    scoped = tx if (account, region) == (tx.account, tx.region) else tx.scope(account, region)
                    violation = scoped.get(VIOLATION, name)
                    if violation is not None:
                        things.setdefault((account, region), set()).add(violation["thingName"])
                else:
                    things.setdefault((account, region), set()).add(name.split("/", 1)[0])
        elif change[3] == MEMBER_OF:
            things.setdefault((change[1], change[2]), set()).add(change[5])
    return things, groups


# Document kinds and link relations _affected follows (both are a change's fourth field).
_FOLLOWED = frozenset({THING, GROUP, SHADOW, CONNECTIVITY, VIOLATION, MEMBER_OF})


def on_unit_ending(ctx) -> None:
    tx = ctx.tx
    changes = getattr(tx, "changes", None)
    if not changes:
        return
    # Within the unit's own scope, nothing to follow when no change is of a followed kind or
    # link (what _affected looks at), or indexing was never configured there (the settings are
    # read only where _affected would read them; from memory on SQLite): ~10% of a CreateThing.
    # (a plain loop: the generators of all()/any() cost more than the usual one change)
    account, region, followed = tx.account, tx.region, False
    for change in changes:
        if change[1] != account or change[2] != region:
            break  # another scope's change: the walk below reads its settings
        if not followed and change[3] in _FOLLOWED:
            followed = True
    else:
        if not followed or tx.get(settings.KIND, settings.NAME) is None:
            return
    start = 0
    configs: dict = {}
    for _ in range(4):  # membership links made here are followed too, a few rounds at most
        things, groups = _affected(tx, changes[start:], configs)
        start = len(changes)
        if not things and not groups:
            return
        for scope in set(things) | set(groups):
            scoped = tx if scope == (tx.account, tx.region) else tx.scope(*scope)
            config = _config(tx, configs, scope)
            if settings.things_on(config) and config.get("thingStatus"):
                for name in sorted(things.get(scope, ())):
                    reindex_thing(ctx, scoped, config, name)
            if settings.groups_on(config) and config.get("groupStatus"):
                for name in sorted(groups.get(scope, ())):
                    reindex_group(scoped, name, config)


hooks.on(hooks.UNIT_ENDING, on_unit_ending)


# building -------------------------------------------------------------------------
def drop_things(tx) -> None:
    for name, _ in tx.scan(settings.THING_INDEX):
        tx.delete(settings.THING_INDEX, name)


def drop_groups(tx) -> None:
    for name, _ in tx.scan(settings.GROUP_INDEX):
        tx.delete(settings.GROUP_INDEX, name)


def build_step(ctx) -> bool:
    """Index the next batch of things (and all groups) of a building index.
    True when more remains."""
    tx = ctx.tx
    config = settings.load(tx)
    more = False
    if settings.things_on(config) and config.get("thingStatus") in ("BUILDING", "REBUILDING"):
        rows = tx.scan(THING, after=config.get("thingCursor"), limit=BATCH)
        for name, _ in rows:
            reindex_thing(ctx, tx, config, name)
        if len(rows) < BATCH:
            config["thingStatus"], config["thingCursor"] = "ACTIVE", None
            config[settings.ENTRIES[fields.THINGS]] = settings.ENTRY_FORMAT
        else:
            config["thingCursor"] = rows[-1][0]
            more = True
    if settings.groups_on(config) and config.get("groupStatus") in ("BUILDING", "REBUILDING"):
        for name, _ in tx.scan(GROUP):
            reindex_group(tx, name)
        config["groupStatus"] = "ACTIVE"
        config[settings.ENTRIES[fields.THING_GROUPS]] = settings.ENTRY_FORMAT
    settings.save(tx, config)
    return more


def upgrade_step(ctx) -> bool:
    """Rewrite the next batch of entries of an active index built before the
    current entry format (settings.ENTRY_FORMAT). True when more remains."""
    tx = ctx.tx
    config = settings.load(tx)
    more = False
    for index, kind, on, status in ((fields.THINGS, settings.THING_INDEX, settings.things_on, "thingStatus"),
                                    (fields.THING_GROUPS, settings.GROUP_INDEX, settings.groups_on, "groupStatus")):
        if not on(config) or config.get(status) != "ACTIVE" or settings.current_entries(config, index):
            continue
        cursor = settings.ENTRIES[index] + "Cursor"
        rows = tx.scan(kind, after=config.get(cursor), limit=BATCH)
        for name, doc in rows:
            tx.put(kind, name, doc, entries(doc["fields"], index))
        if len(rows) < BATCH:
            config[settings.ENTRIES[index]] = settings.ENTRY_FORMAT
            config.pop(cursor, None)
        else:
            config[cursor] = rows[-1][0]
            more = True
    settings.save(tx, config)
    return more


def _outdated(doc: dict) -> bool:
    return any(doc.get(status) == "ACTIVE" and not settings.current_entries(doc, index)
               for index, status in ((fields.THINGS, "thingStatus"), (fields.THING_GROUPS, "groupStatus")))


def continue_build(runtime, account: str, region: str, step_fn=build_step, done=lambda: None) -> None:
    """Run the remaining build (or upgrade) steps on the loop, one unit of work each."""

    def step():
        try:
            with unit_of_work(runtime, account, region, "iot", "BuildIndex") as ctx:
                more = step_fn(ctx)
        except Exception:
            log.exception("building the fleet index of %s %s failed", account, region)
            more = False
        if more:
            schedule()
        else:
            done()

    def schedule():
        try:
            asyncio.get_running_loop().call_soon(step)
        except RuntimeError:
            step()

    schedule()


@periodic("fleet-index-build")
def resume_builds(store, runtime) -> None:
    """A build cut short by a restart goes on; an index built before the current
    entry format is upgraded in place."""
    for account, region, _, doc in store.scan_all_scopes(settings.KIND):
        if doc.get("thingStatus") in ("BUILDING", "REBUILDING") or doc.get("groupStatus") in ("BUILDING", "REBUILDING"):
            with unit_of_work(runtime, account, region, "iot", "BuildIndex") as ctx:
                build_step(ctx)
        elif _outdated(doc) and (id(runtime), account, region) not in _UPGRADING:
            _UPGRADING.add((id(runtime), account, region))
            continue_build(runtime, account, region, upgrade_step,
                           done=lambda key=(id(runtime), account, region): _UPGRADING.discard(key))


_UPGRADING: set = set()  # (runtime, account, region) whose upgrade is under way on the loop
