"""Loads the service models: botocore's own plus the ones localiot ships (Fleet Hub)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # ours, also for boto3 via AWS_DATA_PATH
# botocore's models of the services localiot implements, copied from the botocore
# release it was built against, so the engine does not change with the installed botocore.
SERVICE_MODELS_DIR = Path(__file__).resolve().parent.parent / "service_models"


def model_loader() -> Loader:
    """A botocore Loader that sees only the models shipped inside localiot."""
    return Loader(extra_search_paths=[str(SERVICE_MODELS_DIR), str(MODELS_DIR)], include_default_search_paths=False)

# Order matters for unsigned requests: the first service whose routes match wins.
SERVICE_NAMES = (
    "iot",
    "iot-data",
    "iot-jobs-data",
    "iotdeviceadvisor",
    "iotsecuretunneling",
    "iotfleethub",
    "iot-managed-integrations",
)


@dataclass
class Service:
    name: str
    model: ServiceModel

    @property
    def protocol(self) -> str:
        return self.model.protocol

    @property
    def signing_name(self) -> str:
        return self.model.signing_name

    @cached_property
    def validation_error(self) -> str:
        """The error type this service answers constraint violations with."""
        errors = {e.name for op in self.operations.values() for e in op.error_shapes}
        if self.name == "iot" or "ValidationException" not in errors:
            return "InvalidRequestException"
        return "ValidationException"

    @cached_property
    def operations(self) -> dict[str, OperationModel]:
        return {name: self.model.operation_model(name) for name in self.model.operation_names}

    @cached_property
    def error_shapes(self) -> dict:
        shapes = {}
        for op in self.operations.values():
            for shape in op.error_shapes:
                shapes[shape.name] = shape
        return shapes


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    """One shipped service model, loaded once per process (the engine's, and code outside
    the engine that needs a shape, e.g. provisioning validating its calls)."""
    return ServiceModel(model_loader().load_service_model(name, "service-2"), service_name=name)


def load_services() -> list[Service]:
    """The engine's services, on the process's one copy of each model (`service_model`),
    which in-process callers, provisioning and the indexing replies read too."""
    return [Service(name, service_model(name)) for name in SERVICE_NAMES]


def load_paginators(name: str) -> dict:
    """operation -> paginator config from the service's paginators-1.json ({} when it has none)."""
    from botocore.exceptions import DataNotFoundError

    try:
        raw = model_loader().load_service_model(name, "paginators-1")
    except DataNotFoundError:
        return {}
    return raw.get("pagination", {})
