"""The import graph of the rules family: the topic library it shares with the
broker is a leaf, and the rules family and the SQL engine sit in no import
circle (tools/import_cycles.py reads every import with ast, lazy ones too)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_topic_library_imports_nothing_from_localiot():
    edges = _tool().graph(ROOT / "localiot")
    assert edges["localiot.topics"] == set()
    users = {m for m, targets in edges.items() if "localiot.topics" in targets}
    assert {"localiot.broker.broker", "localiot.services.rules.engine", "localiot.iotsql.parser"} <= users


def test_no_import_circle_through_the_rules_family_or_the_sql_engine():
    tool = _tool()
    circles = tool.components(tool.graph(ROOT / "localiot"))
    ours = ("localiot.topics", "localiot.services.rules", "localiot.iotsql")
    assert [c for c in circles if any(m.startswith(ours) for m in c)] == []


def test_the_tool_finds_a_circle():
    tool = _tool()
    assert tool.components({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert tool.components({"a": {"b"}, "b": set()}) == []
