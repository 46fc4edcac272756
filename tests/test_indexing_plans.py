"""The index look-ups behind SearchIndex (numeric ranges on ordered entries,
text ranges, wildcards as index patterns, field:*) give exactly the things a
full evaluation gives, page after page, through boto3; an index built before
the numeric entries is upgraded in place on the clock and answers the same
throughout."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from localiot.indexing import fields
from localiot.indexing.plan import Lookup, exact, grams_key, lookups, numeric_key, reversed_key
from localiot.indexing.query import parse
from localiot.testing import advance, make_client

TEMPS = [-12.5, -3, 0, 0.5, 2, 7, 7.25, 10, 19.99, 20, 20.5, 100, 1e6]
LABELS = ["alpha", "al*ha", "beta", "b?ta", "gamma", "alphabet", "Alpha", "al", "20", "7", "a[l]pha", "ünïcode-α",
          "x]ha", "beta\n"]


def _seed(iot, data) -> dict[str, dict]:
    fleet = {}
    for i in range(60):
        name = f"dev-{i:03d}"
        attrs = {"level": str(i % 13 - 4)}
        if i % 7 == 0:
            attrs["level"] = "n/a"  # not a number: compares as text
        iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
        temp = TEMPS[i % len(TEMPS)]
        reported = {"temp": temp, "mixed": "warm" if i % 5 == 0 else temp, "label": LABELS[i % len(LABELS)],
                    "code": ["20.50", 20.5, "2.05e1", "20.5x", 7][i % 5]}
        if i % 9:
            reported["battery"] = i
        reported["on"] = i % 3 == 0
        data.update_thing_shadow(thingName=name, payload=json.dumps({"state": {"reported": reported}}).encode())
        fleet[name] = {"attrs": attrs, "reported": reported}
    return fleet


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


CASES = [  # (query, predicate over one seeded thing)
    ("shadow.reported.temp:[0 TO 20]", lambda t: 0 <= t["reported"]["temp"] <= 20),
    ("shadow.reported.temp:{0 TO 20}", lambda t: 0 < t["reported"]["temp"] < 20),
    ("shadow.reported.temp:[-5 TO 0.5}", lambda t: -5 <= t["reported"]["temp"] < 0.5),
    ("shadow.reported.temp>7", lambda t: t["reported"]["temp"] > 7),
    ("shadow.reported.temp>=7.25", lambda t: t["reported"]["temp"] >= 7.25),
    ("shadow.reported.temp<-3", lambda t: t["reported"]["temp"] < -3),
    ("shadow.reported.temp:[1000 TO *]", lambda t: t["reported"]["temp"] >= 1000),
    ("shadow.reported.temp:20.0", lambda t: t["reported"]["temp"] == 20),
    ("shadow.reported.code:20.50", lambda t: t["reported"]["code"] in (20.5, "20.50")),  # numbers by value,
    ("shadow.reported.code:2.05e1", lambda t: t["reported"]["code"] in (20.5, "2.05e1")),  # strings as written
    ("attributes.level>2", lambda t: (_num(t["attrs"]["level"]) or -99) > 2 or
     (_num(t["attrs"]["level"]) is None and t["attrs"]["level"] > "2")),
    ("attributes.level:[-4 TO -1]", lambda t: _num(t["attrs"]["level"]) is not None and
     -4 <= _num(t["attrs"]["level"]) <= -1),
    ("shadow.reported.label:[alpha TO b]", lambda t: "alpha" <= t["reported"]["label"] <= "b"),
    ("shadow.reported.label:{al TO alphabet]", lambda t: "al" < t["reported"]["label"] <= "alphabet"),
    ("shadow.reported.mixed>10", lambda t: isinstance(t["reported"]["mixed"], (int, float)) and
     t["reported"]["mixed"] > 10 or (isinstance(t["reported"]["mixed"], str) and t["reported"]["mixed"] > "10")),
    ("shadow.reported.label:al*a", lambda t: t["reported"]["label"].startswith("al") and t["reported"]["label"].endswith("a")),
    ("shadow.reported.label:?eta", lambda t: len(t["reported"]["label"]) == 4 and t["reported"]["label"].endswith("eta")),
    # (`?` takes a final newline, and no pattern ends before one: "beta\n")
    ("shadow.reported.label:*ta?", lambda t: t["reported"]["label"][-3:-1] == "ta"),
    ("shadow.reported.label:*eta", lambda t: t["reported"]["label"].endswith("eta")),
    (r"shadow.reported.label:al\*ha", lambda t: t["reported"]["label"] == "al*ha"),
    (r"shadow.reported.label:b\?t*", lambda t: t["reported"]["label"].startswith("b?t")),
    (r"shadow.reported.label:a\[l\]*", lambda t: t["reported"]["label"].startswith("a[l]")),
    (r"shadow.reported.label:a?l?pha", lambda t: t["reported"]["label"] == "a[l]pha"),
    ("shadow.reported.label:*ph*", lambda t: "ph" in t["reported"]["label"]),
    ("shadow.reported.label:alpha*", lambda t: t["reported"]["label"].startswith("alpha")),
    ("thingName:dev-0?7", lambda t: t["name"][:5] == "dev-0" and t["name"][6] == "7"),
    ("shadow.reported.battery:*", lambda t: "battery" in t["reported"]),
    ("shadow.reported.battery:* AND NOT shadow.reported.temp:[0 TO 10]",
     lambda t: "battery" in t["reported"] and not 0 <= t["reported"]["temp"] <= 10),
    ("shadow.reported.temp<0 OR shadow.reported.label:gam*",
     lambda t: t["reported"]["temp"] < 0 or t["reported"]["label"].startswith("gam")),
    ("shadow.reported.temp:[0 TO 10] AND shadow.reported.label:alpha",
     lambda t: 0 <= t["reported"]["temp"] <= 10 and t["reported"]["label"] == "alpha"),
    ("shadow.reported.battery>=30 AND shadow.reported.battery<40 AND thingName:dev-03*",
     lambda t: 30 <= t["reported"].get("battery", -1) < 40),
    # exact plans (plan.exact): the look-up's rows are answered without checking each again
    ("shadow.reported.label:alpha", lambda t: t["reported"]["label"] == "alpha"),
    ("shadow.reported.label:Alpha", lambda t: t["reported"]["label"] == "Alpha"),
    ("shadow.reported.mixed:warm", lambda t: t["reported"]["mixed"] == "warm"),
    ("shadow.reported.on:true", lambda t: t["reported"]["on"] is True),
    ("shadow.reported.on:false", lambda t: t["reported"]["on"] is False),
    ("shadow.reported.code:20.5x", lambda t: t["reported"]["code"] == "20.5x"),
    ("thingName:dev-01*", lambda t: t["name"].startswith("dev-01")),
    ("thingName:dev-0*", lambda t: t["name"].startswith("dev-0")),
    ("thingName:dev-042", lambda t: t["name"] == "dev-042"),
    ("attributes.level:n\\/a", lambda t: t["attrs"]["level"] == "n/a"),
]


def _ends(field, end):
    return lambda t: _value(t, field).endswith(end)


def _value(t, field):
    where, key = field.split(".", 1) if "." in field else (field, None)
    value = t["name"] if where == "name" else t[where][key]
    return ("true" if value else "false") if isinstance(value, bool) else \
        str(int(value)) if isinstance(value, (int, float)) and float(value).is_integer() else str(value)


# Wildcards the reversed entries answer (a literal end longer than the literal start),
# and the others, beside them: each compared with the predicate and with a full scan.
WILDCARD_CASES = [
    ("shadow.reported.label:*ha", _ends("reported.label", "ha")),
    ("shadow.reported.label:*pha", _ends("reported.label", "pha")),
    ("shadow.reported.label:*Alpha", _ends("reported.label", "Alpha")),
    ("shadow.reported.label:*l?ha", lambda t: len(_value(t, "reported.label")) >= 4 and
     _value(t, "reported.label")[-4] == "l" and _value(t, "reported.label").endswith("ha")),
    ("shadow.reported.label:a*pha", lambda t: _value(t, "reported.label").startswith("a") and
     _value(t, "reported.label").endswith("pha") and len(_value(t, "reported.label")) >= 4),
    ("shadow.reported.label:a*a", lambda t: _value(t, "reported.label")[:1] == "a" and
     _value(t, "reported.label")[-1:] == "a" and len(_value(t, "reported.label")) >= 2),
    (r"shadow.reported.label:*\*ha", _ends("reported.label", "*ha")),
    (r"shadow.reported.label:*\]ha", _ends("reported.label", "]ha")),
    (r"shadow.reported.label:*\[l\]pha", _ends("reported.label", "[l]pha")),
    (r"shadow.reported.label:*\?ta", _ends("reported.label", "?ta")),
    ("shadow.reported.label:?\\?ta", lambda t: len(_value(t, "reported.label")) == 4 and
     _value(t, "reported.label").endswith("?ta")),
    ("shadow.reported.label:*α", _ends("reported.label", "α")),
    ("shadow.reported.label:*c?de-α", lambda t: _value(t, "reported.label").endswith("code-α")),
    ("shadow.reported.label:ü*?ïcode-α", lambda t: _value(t, "reported.label") == "ünïcode-α"),
    ("shadow.reported.label:*ph*", lambda t: "ph" in _value(t, "reported.label")),
    ("shadow.reported.code:*.5", _ends("reported.code", ".5")),  # the number 20.5's text, not "20.50"
    ("shadow.reported.code:*0", _ends("reported.code", "0")),
    ("shadow.reported.code:*5*", lambda t: "5" in _value(t, "reported.code")),
    ("shadow.reported.on:*ue", lambda t: t["reported"]["on"] is True),
    ("thingName:*7", _ends("name", "7")),
    ("thingName:*-04?", lambda t: t["name"][:-1].endswith("-04")),
    ("thingName:dev*7", _ends("name", "7")),
    ("thingName:d*-057", lambda t: t["name"] == "dev-057"),
    ("thingName:*", lambda t: True),
    ("thingName:*v-04*", lambda t: "v-04" in t["name"]),  # infix: the trigram entries
    ("thingName:*ev-0*7", lambda t: "ev-0" in t["name"] and t["name"].endswith("7")),
    ("thingName:*-0?7*", lambda t: any(t["name"][i:i + 2] == "-0" and t["name"][i + 3:i + 4] == "7"
                                       for i in range(len(t["name"])))),
    ("thingName:*v-05?*", lambda t: "v-05" in t["name"][:-1]),
    ("thingName:*ev-04*", lambda t: "ev-04" in t["name"]),  # odd and even offsets of the literal
    ("thingName:*dev-04*", lambda t: "dev-04" in t["name"]),
    ("thingName:*-042*", lambda t: "-042" in t["name"]),
    ("thingName:*xyz*", lambda t: False),
    (r"attributes.level:*n\/a*", lambda t: "n/a" in t["attrs"]["level"]),
    ("attributes.level:*\\/a", lambda t: t["attrs"]["level"] == "n/a"),
    ("attributes.level:*3", lambda t: t["attrs"]["level"].endswith("3")),
    ("shadow.reported.label:*ha AND shadow.reported.temp>0",
     lambda t: _value(t, "reported.label").endswith("ha") and t["reported"]["temp"] > 0),
    ("shadow.reported.label:*ha OR thingName:*9", lambda t: _value(t, "reported.label").endswith("ha") or
     t["name"].endswith("9")),
    ("NOT shadow.reported.label:*ha", lambda t: not _value(t, "reported.label").endswith("ha")),
    ("shadow.reported.label:(*ta OR *ma) AND NOT thingName:*1", lambda t: _value(t, "reported.label")[-2:] in
     ("ta", "ma") and not t["name"].endswith("1")),
]


def _scanned(query):
    """The same query answered by a full scan: an OR with a clause no look-up can narrow
    (NOT alone) and that matches nothing (every thing has a name)."""
    return f"({query}) OR (NOT thingName:*)"


@pytest.mark.parametrize("query,predicate", WILDCARD_CASES, ids=[c[0] for c in WILDCARD_CASES])
def test_wildcards_match_a_full_evaluation(fleet, query, predicate):
    iot, seeded = fleet
    found = _all(iot, query, page_size=3)
    assert found == _expected(seeded, predicate)
    assert found == _all(iot, _scanned(query), page_size=3)


@pytest.mark.parametrize("common,few", [(3, 0), (1, 0), (1000, 1)])
def test_infix_wildcards_whatever_their_trigrams_hold(fleet, monkeypatch, common, few):
    """An infix wildcard reads the names of its rarer trigrams, rarest first, or a GLOB over
    the field when every trigram is common: the same things either way (the thresholds
    set so that a 60-thing fleet takes each way)."""
    from localiot.services.indexing import search

    monkeypatch.setattr(search, "COMMON", common)
    monkeypatch.setattr(search, "FEW", few)
    iot, seeded = fleet
    for query, predicate in [("thingName:*v-04*", lambda t: "v-04" in t["name"]),
                             ("thingName:*ev-0*", lambda t: "ev-0" in t["name"]),
                             ("thingName:*-05?*", lambda t: "-05" in t["name"][:-1]),
                             ("thingName:*v-0*", lambda t: "v-0" in t["name"]),
                             ("thingName:*dev-04*", lambda t: "dev-04" in t["name"]),
                             ("thingName:*ev-04*", lambda t: "ev-04" in t["name"]),
                             ("thingName:*dev-0*7", lambda t: t["name"].endswith("7"))]:
        assert _all(iot, query, page_size=4) == _expected(seeded, predicate), query


def test_wildcards_on_fields_of_several_values(fleet):
    """thingGroupNames and parentGroupNames hold several values: a document matches when one does."""
    iot, seeded = fleet
    iot.update_indexing_configuration(thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    flat = ["root", "site-a", "site-b", "lab-a", "lab-ab"]  # a thing is in one group per hierarchy
    parents = {"top": None, "zone-a": "top", "zone-b": "top", "room-ab": "zone-a", "other": None, "sub-x": "other"}
    for group in flat:
        iot.create_thing_group(thingGroupName=group)
    for group, parent in parents.items():
        iot.create_thing_group(thingGroupName=group, **({"parentGroupName": parent} if parent else {}))
    groups_of = {name: [g for j, g in enumerate(flat) if (i + j) % 3 == 0] for i, name in enumerate(sorted(seeded))}
    for name, groups in groups_of.items():
        for group in groups:
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    for query, wanted in [("thingGroupNames:*-a", lambda gs: any(g.endswith("-a") for g in gs)),
                          ("thingGroupNames:*b", lambda gs: any(g.endswith("b") for g in gs)),
                          ("thingGroupNames:l*?b", lambda gs: "lab-ab" in gs),
                          ("thingGroupNames:*o? AND NOT thingGroupNames:*-b",
                           lambda gs: "root" in gs and "site-b" not in gs)]:
        found = _all(iot, query, page_size=4)
        assert found == sorted(n for n, gs in groups_of.items() if wanted(gs)), query
        assert found == _all(iot, _scanned(query), page_size=4)
    parents.update(dict.fromkeys(flat))
    ancestors = {g: [] for g in parents}
    for group in parents:
        up = parents[group]
        while up:
            ancestors[group].append(up)
            up = parents[up]
    for query, wanted in [("parentGroupNames:*op", lambda g: "top" in ancestors[g]),
                          ("parentGroupNames:*-?", lambda g: any(a[-2:-1] == "-" for a in ancestors[g])),
                          ("thingGroupName:*-a*", lambda g: "-a" in g),
                          ("thingGroupName:*ite-*", lambda g: "ite-" in g),
                          ("thingGroupName:*oom*b", lambda g: "oom" in g and g.endswith("b")),
                          ("thingGroupName:*b", lambda g: g.endswith("b"))]:
        found, token = [], None
        while True:
            page = iot.search_index(indexName="AWS_ThingGroups", queryString=query, maxResults=2,
                                    **({"nextToken": token} if token else {}))
            found += [g["thingGroupName"] for g in page["thingGroups"]]
            token = page.get("nextToken")
            if not token:
                break
        assert found == sorted(g for g in parents if wanted(g)), query


@pytest.mark.parametrize("query,entry_format,planned", [
    ("thingName:*abc", 3, [Lookup("prefix", reversed_key("thingName"), "cba")]),
    ("thingName:*abc", 2, [Lookup("pattern", "thingName", "*abc")]),
    ("thingName:a*bc", 3, [Lookup("pattern", reversed_key("thingName"), "cb*a", "cb", "cb\U0010ffff")]),
    (r"thingName:?b*\*c", 3, [Lookup("pattern", reversed_key("thingName"), "c[*]*b?", "c*", "c*\U0010ffff")]),
    ("thingName:ab*c", 3, [Lookup("pattern", "thingName", "ab*c", "ab", "ab\U0010ffff")]),
    ("thingName:abcd*cd", 3, [Lookup("pattern", "thingName", "abcd*cd", "abcd", "abcd\U0010ffff")]),
    ("thingName:thing-0?4321", 3, [Lookup("pattern", reversed_key("thingName"), "1234?0-gniht", "1234",
                                          "1234\U0010ffff")]),
    ("thingName:ab*", 3, [Lookup("prefix", "thingName", "ab")]),
    ("thingName:*abcd*", 4, [Lookup("grams", grams_key("thingName"), "abcd",
                                    fallback=Lookup("pattern", "thingName", "*abcd*"))]),
    ("thingName:*ab?cdef*", 4, [Lookup("grams", grams_key("thingName"), "cdef",
                                       fallback=Lookup("pattern", "thingName", "*ab?cdef*"))]),
    ("thingName:*abc*", 4, [Lookup("pattern", "thingName", "*abc*")]),  # too short for both alignments
    ("thingName:*abcd*", 3, [Lookup("pattern", "thingName", "*abcd*")]),
    ("thingName:*ab*", 4, [Lookup("pattern", "thingName", "*ab*")]),
    ("thingName:ab*bcde*", 4, [Lookup("grams", grams_key("thingName"), "bcde",
                                      fallback=Lookup("pattern", "thingName", "ab*bcde*", "ab", "ab\U0010ffff"))]),
    ("attributes.site:*abcd*", 4, [Lookup("pattern", "attributes.site", "*abcd*")]),
    ("thingName:abcde*bcd*", 4, [Lookup("pattern", "thingName", "abcde*bcd*", "abcde", "abcde\U0010ffff")]),
    ("shadow.reported.label:*abcd*", 4, [Lookup("pattern", "shadow.reported.label", "*abcd*")]),
    ("shadow.reported.temp>3", 1, None),  # no numeric entries yet: scanned
    ("shadow.reported.temp>3 AND thingName:*ab", 1, [Lookup("pattern", "thingName", "*ab")]),
    ("shadow.reported.temp>3", 2, [Lookup("range", numeric_key("shadow.reported.temp"), "", "c008000000000000", None,
                                          False, True), Lookup("range", "shadow.reported.temp", "", "3", None, False)]),
])
def test_which_lookups_a_wildcard_plans(query, entry_format, planned):
    assert lookups(parse(query, fields.THINGS, {}), entry_format=entry_format) == planned


def _all(iot, query, page_size=7):
    found, token = [], None
    while True:
        page = iot.search_index(queryString=query, maxResults=page_size, **({"nextToken": token} if token else {}))
        found += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            return found


@pytest.fixture
def fleet(localiot_server):
    iot, data = make_client(localiot_server), make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "customFields": [{"name": "shadow.reported.temp", "type": "Number"},
                         {"name": "shadow.reported.label", "type": "String"}]})
    return iot, _seed(iot, data)


def _expected(seeded, predicate):
    return sorted(name for name, thing in seeded.items() if predicate({**thing, "name": name}))


@pytest.mark.parametrize("query,predicate", CASES, ids=[c[0] for c in CASES])
def test_planned_queries_match_a_full_evaluation(fleet, query, predicate):
    iot, seeded = fleet
    found = _all(iot, query)
    assert found == sorted(found)  # name order across pages
    assert found == _expected(seeded, predicate)


@pytest.mark.parametrize("query,answer", [
    ("shadow.reported.label:alpha", True), ("thingName:dev-01*", True), ("thingName:dev-042", True),
    ("shadow.reported.on:true", True),
    ("shadow.reported.temp:20", False),  # 20 is also the text of "20.0"'s number: checked
    ("shadow.reported.label:alpha*", True), ("shadow.reported.label:*pha", True),  # prefixes of (reversed) entries
    ("shadow.reported.label:a*pha", True), ("shadow.reported.label:*l?ha", True),  # GLOB patterns of entries
    ("thingName:dev-0?7", True), ("shadow.reported.label:*ta?", True),
    ("thingName:*ev-0*", False),  # trigrams (they may sit apart): checked
    ("shadow.reported.battery:*", False),
    ("shadow.reported.label:alpha AND thingName:dev-01*", False), ("NOT thingName:dev-01*", False),
])
def test_which_plans_are_exact(query, answer):
    node = parse(query, fields.THINGS, {})
    assert exact(node, lookups(node)) is answer


def _raw_search(server, query: str, index: str | None = None, token: str | None = None) -> bytes:
    body = {"queryString": query, "maxResults": 4, **({"indexName": index} if index else {}),
            **({"nextToken": token} if token else {})}
    request = urllib.request.Request(f"{server.endpoint}/indices/search", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return response.read()


@pytest.mark.parametrize("spliced,checked,index", [
    ("thingName:dev-01*", "thingName:dev-01* AND thingName:dev-0*", None),
    ("shadow.reported.label:alpha", "shadow.reported.label:alpha AND thingName:dev*", None),
    ("shadow.reported.on:true", "shadow.reported.on:true AND shadow.reported.on:true", None),
    ("thingGroupName:grp-*", "thingGroupName:grp-* AND thingGroupName:grp*", "AWS_ThingGroups"),
    ("shadow.reported.label:al*", "shadow.reported.label:al* AND thingName:dev*", None),
    ("shadow.reported.label:*ha", "shadow.reported.label:*ha AND thingName:dev*", None),
    ("thingName:*7", "thingName:*7 AND thingName:dev*", None),
    ("shadow.reported.label:a*p?a", "shadow.reported.label:a*p?a AND thingName:dev*", None),
    ("thingName:dev-0?7", "thingName:dev-0?7 AND thingName:dev*", None),
    ("thingGroupDescription:*\\\\", "thingGroupDescription:*\\\\ AND thingGroupName:*", "AWS_ThingGroups"),
])
def test_an_exact_plan_replies_the_bytes_a_checked_plan_writes(fleet, localiot_server, spliced, checked, index):
    """An exact query's page is spliced from reply texts stored beside the documents
    (services/indexing/replies.py); the same matches found the checked way (the AND makes
    the plan inexact) are serialized from the documents: the bytes are the same, page after page."""
    iot, _ = fleet
    iot.update_indexing_configuration(thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    for name, attrs in (("grp-a", {"site": "n"}), ("grp-b", {"site": "s", "x": "[y]"}), ("grp-c", {}), ("other", {})):
        iot.create_thing_group(thingGroupName=name, thingGroupProperties={
            "thingGroupDescription": f"the {name} group: \"quoted\" & <b>\\\\", "attributePayload": {"attributes": attrs}})
    node = parse(spliced, index or fields.THINGS, {})
    assert exact(node, lookups(node))
    pages, token = 0, None
    while True:
        mine, theirs = _raw_search(localiot_server, spliced, index, token), _raw_search(localiot_server, checked, index,
                                                                                       token)
        assert mine == theirs
        pages, token = pages + 1, json.loads(mine).get("nextToken")
        if not token:
            break
    assert pages >= (1 if index else 2)


def test_an_index_from_before_numeric_entries_is_upgraded_in_place(fleet, localiot_server):
    """Numeric and reversed entries (localiot.indexing.plan) appeared in later versions: an
    index without them answers the same while the background pass writes them."""
    iot, seeded = fleet
    store = localiot_server.app.runtime.store
    queries = [CASES[0], WILDCARD_CASES[0], WILDCARD_CASES[3]]
    expected = [_expected(seeded, predicate) for _, predicate in queries]

    def execute(sql, args=()):  # straight to the store's database, as the previous version left it
        if hasattr(store, "db"):
            return store.db.execute(sql, args)
        sql = sql.replace("'%'", "'%%'").replace("?", "%s").replace("char(31)", "chr(31)")
        return store.connection().execute(sql, args)

    def downgrade():  # what a data directory written by the first version holds
        execute("BEGIN IMMEDIATE" if hasattr(store, "db") else "BEGIN")
        for suffix in ("n", "r"):
            execute(f"DELETE FROM object_index WHERE kind='fleet-index' AND key LIKE '%' || char(31) || '{suffix}'")
        row = execute("SELECT doc FROM objects WHERE kind='indexing-config'").fetchone()
        config = json.loads(row[0])
        config.pop("thingEntries", None)
        execute("UPDATE objects SET doc=? WHERE kind='indexing-config'", (json.dumps(config),))
        execute("COMMIT")
        if hasattr(store, "kept"):  # written behind the store's back: as a process opening it, keep nothing yet
            store.kept.clear()

    def added_rows():
        return tuple(execute("SELECT COUNT(*) FROM object_index WHERE kind='fleet-index' "
                             f"AND key LIKE '%' || char(31) || '{suffix}'").fetchone()[0] for suffix in ("n", "r"))

    before = localiot_server.call(added_rows)
    assert min(before) > 0
    localiot_server.call(downgrade)
    assert localiot_server.call(added_rows) == (0, 0)
    assert [_all(iot, query) for query, _ in queries] == expected  # planned with the entries there meanwhile
    advance(localiot_server, 1)  # the background pass upgrades it
    for _ in range(200):
        if localiot_server.call(added_rows) == before:
            break
        advance(localiot_server, 0)
    assert localiot_server.call(added_rows) == before
    assert [_all(iot, query) for query, _ in queries] == expected


def test_a_query_is_checked_again_when_the_declared_types_change(fleet, localiot_server):
    """SearchIndex keeps checked and planned queries by query string (search.prepared_query):
    the same string is checked again under a configuration that declares its field otherwise."""
    iot, seeded = fleet
    query = "shadow.reported.label:[1 TO 10]"
    with pytest.raises(ClientError) as info:  # label is declared String: no numeric range
        iot.search_index(queryString=query)
    assert info.value.response["Error"]["Code"] == "InvalidQueryException"
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
    for _ in range(50):  # (the index may be rebuilt for the new declarations)
        if iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE":
            break
        advance(localiot_server, 1)
    undeclared = _all(iot, query)  # now compared by value where both are numbers ("7"; "20" is above)
    assert undeclared == _expected(seeded, lambda t: t["reported"]["label"] == "7")
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "customFields": [{"name": "shadow.reported.temp", "type": "Number"},
                                                                     {"name": "shadow.reported.label", "type": "String"}]})
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString=query)
    assert info.value.response["Error"]["Code"] == "InvalidQueryException"
