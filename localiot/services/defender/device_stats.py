"""Statistical thresholds of device-side metrics (aws:all-bytes-in|out,
aws:all-packets-in|out): AWS accumulates every device's measurements over the
behavior's durationSeconds, ranks them over the fleet, and compares one
device's accumulated measurement with the statistic (pNN or Average).

Device-side datapoints arrive one report at a time, so the fleet's recent
reports are kept per (security profile, behavior) in kind "detect-stat-sample"
(name "<profile>|<behavior>"): {thing: [[timestamp, value], ...]} within the
duration. A thing's value is the sum of its reports over the duration (the
latest report when the duration is one window or less); the threshold is the
statistic of those values over every thing that reported within it.
"""

from __future__ import annotations

from localiot.services.defender import detect_catalog as catalog

SAMPLE = "detect-stat-sample"


def threshold(ctx, profile: dict, behavior: dict, thing: str, raw) -> float | None:
    """The fleet statistic for `behavior` once `thing`'s report `raw` is counted."""
    criteria = behavior["criteria"]
    duration = criteria.get("durationSeconds") or catalog.WINDOW
    name = f"{profile['securityProfileName']}|{behavior['name']}"
    now = ctx.now()
    sample = ctx.tx.get(SAMPLE, name) or {}
    sample.setdefault(thing, []).append([now, float(raw)])
    kept = {t: [p for p in points if p[0] > now - duration] for t, points in sample.items()}
    kept = {t: points for t, points in kept.items() if points}
    ctx.tx.put(SAMPLE, name, kept, {"profile": profile["securityProfileName"]})
    values = [sum(v for _, v in points) if duration > catalog.WINDOW else points[-1][1] for points in kept.values()]
    return catalog.percentile(values, criteria["statisticalThreshold"]["statistic"]) if values else None


def forget(ctx, profile_name: str) -> None:
    for name, _ in ctx.tx.find(SAMPLE, "profile", profile_name):
        ctx.tx.delete(SAMPLE, name)
