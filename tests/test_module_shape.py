"""The shape of the code, checked with tools/import_graph.py: the areas
already cleaned up (device authentication, security, registry, jobs,
provisioning, SigV4) sit in no import circle and have no module over 600
lines. Circles elsewhere are what `python tools/import_graph.py` prints."""

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "import_graph.py"
spec = importlib.util.spec_from_file_location("import_graph", TOOL)
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)

AREAS = (
    "localiot.device_auth", "localiot.services.security", "localiot.services.registry", "localiot.services.jobs",
    "localiot.provisioning", "localiot.protocol.sigv4", "localiot.services.iam",
)


def _in_areas(module: str) -> bool:
    return any(module == area or module.startswith(area + ".") for area in AREAS)


def test_the_tool_finds_circles_and_only_circles(tmp_path):
    package = tmp_path / "localiot"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from localiot.sub import a\n")  # a re-export is no circle
    (package / "sub" / "a.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from localiot.sub.c import g\n")  # deferred counts
    (package / "sub" / "c.py").write_text("import localiot.sub.a\nfrom localiot.sub.d import x\n")
    (package / "sub" / "d.py").write_text("import os\nx = 1\n")
    edges = import_graph.graph(tmp_path)
    assert edges["localiot.sub.c"] == {"localiot.sub.a", "localiot.sub.d"}
    assert import_graph.circles(edges) == [["localiot.sub.a", "localiot.sub.b", "localiot.sub.c"]]


def test_no_import_circle_reaches_the_cleaned_up_areas():
    touching = [c for c in import_graph.circles(import_graph.graph()) if any(_in_areas(m) for m in c)]
    assert touching == []


@pytest.mark.parametrize("area", AREAS)
def test_no_module_of_the_cleaned_up_areas_is_over_600_lines(area):
    assert [(name, n) for name, n in import_graph.long_modules() if _in_areas(name) and name.startswith(area)] == []
