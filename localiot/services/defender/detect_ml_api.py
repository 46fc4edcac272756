"""The time-driven training of ML Detect models and GetBehaviorModelTrainingSummaries
(the models themselves: localiot.services.defender.detect_ml)."""

from __future__ import annotations

from localiot.background import periodic
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender.detect_ml import MODEL, refresh, summary
from localiot.services.defender.profiles import PROFILE
from localiot.services.unit_of_work import unit_of_work


@periodic("defender-ml-detect")
def train(store, runtime) -> None:
    now = runtime.clock.now()
    due = [(a, r, n) for a, r, n, d in store.scan_all_scopes(MODEL) if d.get("nextBuild") is not None and d["nextBuild"] <= now]
    for account, region, name in due:
        with unit_of_work(runtime, account, region, "iot", "DeviceDefenderMLDetect") as ctx:
            model = ctx.tx.get(MODEL, name)
            if model is not None and model.get("nextBuild") is not None and model["nextBuild"] <= now:
                refresh(ctx, model, PROFILE.find(ctx, model["securityProfileName"]), now)


@operation("iot")
def GetBehaviorModelTrainingSummaries(ctx, req):
    profile = req.get("securityProfileName")
    if profile:
        PROFILE.get(ctx, profile)
        rows = ctx.tx.find(MODEL, "profile", profile)
    else:
        rows = ctx.tx.scan(MODEL)
    rows = sorted(rows, key=lambda row: row[0])
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0], default_size=10)
    return {"summaries": [summary(ctx, d) for _, d in found], **extra}
