"""What a managed thing reports: capabilities, metadata, state, connectivity."""

from __future__ import annotations

from localiot.services import operation
from localiot.services.managed_integrations.model import SERVICE, get, pick


@operation(SERVICE)
def GetManagedThingCapabilities(ctx, req):
    doc = get(ctx, req["Identifier"])
    return {"ManagedThingId": doc["Id"], **pick(doc, ("Capabilities", "CapabilityReport"))}


@operation(SERVICE)
def GetManagedThingMetaData(ctx, req):
    doc = get(ctx, req["Identifier"])
    return {"ManagedThingId": doc["Id"], **pick(doc, ("MetaData",))}


@operation(SERVICE)
def GetManagedThingState(ctx, req):
    # The state is what the device (or its hub) last reported per endpoint and
    # capability. localiot has no door through which a managed thing reports
    # (the hub SDK's channel), so no endpoint has a reported state yet.
    get(ctx, req["ManagedThingId"])
    return {"Endpoints": []}


@operation(SERVICE)
def GetManagedThingConnectivityData(ctx, req):
    doc = get(ctx, req["Identifier"])
    # Connectivity comes from the device's own connection to managed
    # integrations, which localiot does not serve: a managed thing here has
    # never connected, so there is no timestamp or disconnect reason to report.
    return {"ManagedThingId": doc["Id"], "Connected": False}
