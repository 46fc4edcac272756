"""localiot installs into a user's project: its protocol engine reads the
service models shipped inside the package (not the installed botocore's), its
dependencies are ranges, and its pytest fixture arrives by entry point."""

import gzip
import json
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from localiot.protocol.models import SERVICE_MODELS_DIR, SERVICE_NAMES, load_services, model_loader

REPO = Path(__file__).resolve().parent.parent


def test_every_service_model_comes_from_the_package():
    loader = model_loader()
    for name in SERVICE_NAMES:
        path = loader.load_service_model(name, "service-2")  # raises if only botocore had it
        assert path["metadata"]
    shipped = {p.parent.parent.name for p in SERVICE_MODELS_DIR.glob("*/*/service-2.json*")}
    assert shipped == set(SERVICE_NAMES) - {"iotfleethub"}
    # the loader never falls back to botocore's own data directory
    assert all("botocore" not in path for path in loader.search_paths)


def test_the_engine_serves_the_shipped_iot_model():
    shipped = json.loads(gzip.decompress((SERVICE_MODELS_DIR / "iot/2015-05-28/service-2.json.gz").read_bytes()))
    iot = next(s for s in load_services() if s.name == "iot")
    assert set(iot.model.operation_names) == set(shipped["operations"])


def test_runtime_dependencies_are_ranges_not_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "==" not in requirement, requirement
    locked = {line.split("==")[0].lower() for line in (REPO / "requirements.lock").read_text().splitlines()
              if line and not line.startswith("#")}
    assert {"boto3", "botocore", "aiohttp", "cryptography", "regex", "cbor2"} <= locked


def test_the_pytest_fixture_is_an_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("localiot.testing") == "localiot.testing"
