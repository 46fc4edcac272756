"""ML Detect: behaviors whose criteria hold an `mlDetectionConfig` (LOW, MEDIUM,
HIGH) instead of an operator and a value, a model per (security profile,
behavior) trained on the datapoints of its metric, and
GetBehaviorModelTrainingSummaries.

Training follows AWS's ML Detect guide on the injectable clock: a model is
first built TRAINING_DAYS (14) after its behavior was created, from the
datapoints of the trailing 14 days of every thing the profile applies to, and
only when there are at least MIN_DATAPOINTS (25,000) of them; it is then
refreshed once a day from the trailing 14 days. A build that lacks data is
retried daily; after RETRY_DAYS (30) days without a successful build the model
is EXPIRED and stops evaluating. Until a model is ACTIVE its behavior never
alarms (PENDING_BUILD); datapointsCollectionPercentage is the share of the
25,000 datapoints the trailing 14 days hold.

The model. AWS does not publish its model; localiot uses a robust statistical
one per behavior: the quartiles of the training datapoints and Tukey's fences
around them, lower = Q1 - k * spread and upper = Q3 + k * spread, where
spread is the interquartile range (at least 1 for count metrics, whose values
are whole numbers, so a fleet that always reports 0 still tolerates small
counts) and k grows with the confidence level: LOW 1.5 (Tukey's "outlier",
most alarms), MEDIUM 3 (Tukey's "far out"), HIGH 6 (fewest alarms: AWS's
higher confidence means lower sensitivity). A datapoint outside the fences is
a violating datapoint; consecutiveDatapointsToAlarm / ToClear then apply as
for any behavior. Quartiles rather than mean and standard deviation because
device metrics are counts with heavy tails: one chatty day must not widen the
normal range for everyone, and the fences of a quartile model move only when
a quarter of the fleet's datapoints move. The datapoints are kept per day as
exact histograms of their values (kind "detect-ml-day"), so a refresh needs
no raw datapoints and sees exactly the trailing 14 days.

Kinds: "detect-ml-model" (name "<profile>|<behavior>", index "profile"),
"detect-ml-day" (name "<profile>|<behavior>|<day number, 8 digits>", index "model").
"""

from __future__ import annotations

import math

from localiot.services.defender import violations

MODEL, DAY_KIND = "detect-ml-model", "detect-ml-day"
DAY = 86400.0
TRAINING_DAYS, RETRY_DAYS, MIN_DATAPOINTS = 14, 30, 25000
FENCE = {"LOW": 1.5, "MEDIUM": 3.0, "HIGH": 6.0}
PENDING, ACTIVE, EXPIRED = "PENDING_BUILD", "ACTIVE", "EXPIRED"
_MODELS, _PENDING = "\0ml-models", "\0ml-pending"  # keys of an evaluation's cache
# the metrics ML Detect models (AWS's guide: 6 cloud-side, 7 device-side, custom metrics of type number)
METRICS = ("aws:num-authorization-failures", "aws:num-connection-attempts", "aws:num-disconnects",
           "aws:message-byte-size", "aws:num-messages-received", "aws:num-messages-sent",
           "aws:all-bytes-in", "aws:all-bytes-out", "aws:all-packets-in", "aws:all-packets-out",
           "aws:num-established-tcp-connections", "aws:num-listening-tcp-ports", "aws:num-listening-udp-ports")
_NOT_WITH_ML = ("comparisonOperator", "value", "statisticalThreshold", "durationSeconds")


def is_ml(behavior: dict) -> bool:
    return bool((behavior.get("criteria") or {}).get("mlDetectionConfig"))


def errors_of(name: str, metric, criteria: dict) -> list[str]:
    """The validation messages of an ML behavior (`metric` from the detect catalog)."""
    out = [f"Behavior {name}: {key} cannot be used with mlDetectionConfig."
           for key in _NOT_WITH_ML if criteria.get(key) is not None]
    if metric.name not in METRICS and not (metric.source == "custom" and metric.kind == "number"):
        out.append(f"Behavior {name}: metric {metric.name} is not supported by ML Detect.")
    return out


# the model's lifecycle, called by the security profile operations ------------------------
def _name(profile: str, behavior: str) -> str:
    return f"{profile}|{behavior}"


def _key(behavior: dict) -> tuple:
    return behavior["metric"], (behavior.get("metricDimension") or {}).get("dimensionName")


def sync(ctx, profile: str, old: list[dict], new: list[dict]) -> None:
    """After a profile's behaviors changed: start training new ML behaviors, and forget
    the models of ML behaviors removed or now measuring another metric or dimension."""
    before = {b["name"]: b for b in old if is_ml(b)}
    after = {b["name"]: b for b in new if is_ml(b)}
    for name, b in before.items():
        if name not in after or _key(after[name]) != _key(b):
            forget(ctx, profile, name)
    for name, b in after.items():
        if ctx.tx.get(MODEL, _name(profile, name)) is None:
            now = ctx.now()
            ctx.tx.put(MODEL, _name(profile, name),
                       {"securityProfileName": profile, "behaviorName": name, "modelStatus": PENDING,
                        "trainingDataCollectionStartDate": now, "nextBuild": now + TRAINING_DAYS * DAY},
                       {"profile": profile})


def forget(ctx, profile: str, behavior: str | None = None) -> None:
    """Drop the model (and training data) of one behavior, or of every ML behavior of `profile`."""
    names = [_name(profile, behavior)] if behavior else [n for n, _ in ctx.tx.find(MODEL, "profile", profile)]
    for name in names:
        ctx.tx.delete(MODEL, name)
        for day, _ in ctx.tx.find(DAY_KIND, "model", name):
            ctx.tx.delete(DAY_KIND, day)


# datapoints ------------------------------------------------------------------------------
def observe(ctx, profile: dict, behavior: dict, thing: str, observed, shown: dict, cache: dict) -> None:
    """One datapoint of an ML behavior: counted for training (written by `flush`) and, once
    the model is ACTIVE, judged against the model's fences."""
    name = _name(profile["securityProfileName"], behavior["name"])
    models = cache.setdefault(_MODELS, {})
    if name not in models:
        models[name] = ctx.tx.get(MODEL, name)
    model = models[name]
    if model is None or model["modelStatus"] == EXPIRED:
        return
    value = _number(observed)
    counts = cache.setdefault(_PENDING, {}).setdefault(name, {})
    counts[repr(value)] = counts.get(repr(value), 0) + 1
    if model["modelStatus"] == ACTIVE:
        lower, upper = fences(model, behavior["criteria"]["mlDetectionConfig"]["confidenceLevel"])
        violations.datapoint(ctx, profile, behavior, thing, not lower <= value <= upper, shown)


def flush(ctx, cache: dict) -> None:
    """Add the datapoints `observe` counted to today's training histogram of each model."""
    day = int(ctx.now() // DAY)
    for name, counts in (cache.pop(_PENDING, None) or {}).items():
        day_name = f"{name}|{day:08d}"
        doc = ctx.tx.get(DAY_KIND, day_name) or {"day": day, "n": 0, "hist": {}}
        for label, count in counts.items():
            doc["hist"][label] = doc["hist"].get(label, 0) + count
            doc["n"] += count
        ctx.tx.put(DAY_KIND, day_name, doc, {"model": name})


def _number(observed) -> float:
    value = float(observed)
    return int(value) if value.is_integer() else value


# training --------------------------------------------------------------------------------
def _days(ctx, name: str, now: float) -> list[dict]:
    first = int(now // DAY) - TRAINING_DAYS
    return [d for _, d in ctx.tx.find(DAY_KIND, "model", name) if d["day"] >= first]


def _quantile(pairs: list[tuple[float, int]], total: int, q: float) -> float:
    """The q-quantile (0..1) of the values a sorted histogram `pairs` counts (nearest rank)."""
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value
    return pairs[-1][0]


def build(days: list[dict], counts: bool) -> dict:
    """The quartiles and spread of the training datapoints that `days` count."""
    merged: dict[float, int] = {}
    for d in days:
        for label, count in d["hist"].items():
            value = float(label)
            merged[value] = merged.get(value, 0) + count
    pairs = sorted(merged.items())
    total = sum(c for _, c in pairs)
    q1, q3 = _quantile(pairs, total, 0.25), _quantile(pairs, total, 0.75)
    spread = max(q3 - q1, 1.0 if counts else 0.0)
    if spread == 0:
        spread = abs(q3) * 0.05 or 1e-9
    return {"q1": q1, "q3": q3, "spread": spread}


def fences(model: dict, confidence: str) -> tuple[float, float]:
    """Tukey's fences of an ACTIVE model at the behavior's (current) confidence level."""
    k = FENCE[confidence]
    return model["q1"] - k * model["spread"], model["q3"] + k * model["spread"]


def refresh(ctx, model: dict, profile: dict | None, now: float) -> None:
    """One daily (re)build of `model`, with the trailing 14 days of datapoints."""
    name = _name(model["securityProfileName"], model["behaviorName"])
    behavior = next((b for b in (profile or {}).get("behaviors") or [] if b["name"] == model["behaviorName"]), None)
    if behavior is None or not is_ml(behavior):
        forget(ctx, model["securityProfileName"], model["behaviorName"])
        return
    first = int(now // DAY) - TRAINING_DAYS
    for day_name, d in ctx.tx.find(DAY_KIND, "model", name):
        if d["day"] < first:
            ctx.tx.delete(DAY_KIND, day_name)
    days = _days(ctx, name, now)
    if sum(d["n"] for d in days) >= MIN_DATAPOINTS:
        model.update(build(days, counts=behavior["metric"].startswith("aws:")),
                     modelStatus=ACTIVE, lastModelRefreshDate=now, lastBuilt=now)
    elif now - model.get("lastBuilt", model["trainingDataCollectionStartDate"] + TRAINING_DAYS * DAY) \
            >= RETRY_DAYS * DAY:
        if model["modelStatus"] == ACTIVE:
            violations.invalidate(ctx, model["securityProfileName"],
                                  lambda v: v["behavior"]["name"] == model["behaviorName"])
        model["modelStatus"] = EXPIRED  # no more builds, no more evaluations
        model.pop("nextBuild", None)
        forget_days = [n for n, _ in ctx.tx.find(DAY_KIND, "model", name)]
        for day_name in forget_days:
            ctx.tx.delete(DAY_KIND, day_name)
    if model.get("nextBuild") is not None:
        model["nextBuild"] += DAY * (math.floor((now - model["nextBuild"]) / DAY) + 1)
    ctx.tx.put(MODEL, name, model, {"profile": model["securityProfileName"]})


def summary(ctx, model: dict) -> dict:
    name = _name(model["securityProfileName"], model["behaviorName"])
    collected = sum(d["n"] for d in _days(ctx, name, ctx.now()))
    out = {"securityProfileName": model["securityProfileName"], "behaviorName": model["behaviorName"],
           "trainingDataCollectionStartDate": model["trainingDataCollectionStartDate"],
           "modelStatus": model["modelStatus"],
           "datapointsCollectionPercentage": round(min(100.0, 100.0 * collected / MIN_DATAPOINTS), 2)}
    if model.get("lastModelRefreshDate") is not None:
        out["lastModelRefreshDate"] = model["lastModelRefreshDate"]
    return out
