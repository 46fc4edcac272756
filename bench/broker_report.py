"""The tables of bench/broker.py: one Markdown table per metric with
mosquitto, localiot and their ratio, and the derived goal lines."""

from __future__ import annotations

import os
import platform

from broker_servers import BROKERS
from figures import fmt_n, ratio, table


HEADER = ["", "mosquitto", "localiot", "localiot/mosquitto"]


def get(results, broker, metric, key):
    return results.get(broker, {}).get(metric, {}).get(key)


def metric_rows(results, metric, spec) -> list[list[str]]:
    rows = []
    for label, key, digits, with_ratio in spec:
        m = get(results, "mosquitto", metric, key)
        lo = get(results, "localiot", metric, key)
        rows.append([label, fmt_n(m, digits), fmt_n(lo, digits), ratio(lo, m) if with_ratio else ""])
    return rows


def skipped(results, metric) -> list[str]:
    notes = []
    for b in BROKERS:
        why = results.get(b, {}).get("skipped", {}).get(metric)
        if why:
            notes.append(f"- {b}: skipped: {why}")
    return notes


def has(results, metrics) -> bool:
    return any(m in results.get(b, {}) or m in results.get(b, {}).get("skipped", {})
               for b in BROKERS for m in metrics)


def section(results, title: str, metrics: list[tuple[str, list]], first_errors: bool = False) -> list[str]:
    """One section of the report: its title, one table of every metric's rows (label, key,
    digits, with ratio), the tests a broker skipped and (`first_errors`) each broker's first
    error; nothing when none of the metrics has a result or a skip."""
    names = [metric for metric, _ in metrics]
    if not has(results, names):
        return []
    out = [title, ""]
    out += table(HEADER, [row for metric, spec in metrics for row in metric_rows(results, metric, spec)])
    for metric in names:
        out += skipped(results, metric)
    if first_errors:
        for b in BROKERS:
            for metric in names:
                e = get(results, b, metric, "first_error")
                if e:
                    out.append(f"- {b} {metric}: first error: {e}")
    out.append("")
    return out


def render(results: dict, args, meta: dict) -> str:
    out = []
    cores = os.cpu_count()
    out.append(f"MQTT broker benchmark: Mosquitto {meta['mosquitto_version']} vs localiot (one Python process, "
               f"uvloop), same load generator")
    out.append(f"Machine: {cores} CPU cores shared by the broker under test AND the load generator "
               f"({args.pub_procs} publisher processes + 1 subscriber process, or {args.gen_procs} connection "
               f"processes); Mosquitto is single-threaded, localiot is one Python process. CPU % = user+system "
               f"over the window, 100% = one core.")
    out.append("")
    w = args.duration
    out += section(results, f"QoS 0 fan-in: {args.publishers} publishers -> 1 subscriber on '#', {args.payload}-byte "
                   f"payloads, messages/s received by the subscriber over {w:g} s after {args.warmup:g} s warm-up",
                   [("qos0", [
                       ("messages/s received (subscriber)", "rate", 0, True),
                       ("messages/s written by publishers", "offered", 0, True),
                       ("messages received per broker CPU second", "per_cpu_s", 0, True),
                       ("broker CPU %", "broker_cpu", 0, False),
                       (f"generator CPU %: publishers ({args.pub_procs} procs)", "pub_cpu", 0, False),
                       ("generator CPU %: subscriber (1 proc)", "sub_cpu", 0, False),
                       ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
                       ("other CPU %: idle broker / rest", "other_cpu", None, False),
                       ("broker RSS at end of window (MB)", "rss_mb", 1, False),
                       ("broker busy after the window (s)", "busy_after", 1, False),
                   ])])
    out += section(results, f"QoS 1 throughput: {args.publishers} publishers at QoS 1, each keeping "
                   f"{args.qos1_window} PUBLISHes in flight (refilled on PUBACK) -> 1 subscriber on '#' at QoS 1 "
                   f"acking every message; {w:g} s window after {args.warmup:g} s warm-up",
                   [("qos1", [
                       ("messages/s received (subscriber)", "rate", 0, True),
                       ("PUBACKs/s received by publishers", "acked", 0, True),
                       ("PUBACKed but not received in the window (%)", "unreceived_pct", 1, False),
                       ("broker CPU %", "broker_cpu", 0, False),
                       (f"generator CPU %: publishers ({args.pub_procs} procs)", "pub_cpu", 0, False),
                       ("generator CPU %: subscriber (1 proc)", "sub_cpu", 0, False),
                       ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
                       ("other CPU %: idle broker / rest", "other_cpu", None, False),
                       ("broker busy after the window (s)", "busy_after", 1, False),
                   ])])
    out += section(results, f"End-to-end latency at a fixed rate: {args.rate:,} messages/s in total from "
                   f"{args.publishers} publishers (QoS 0, {args.payload}-byte payload carrying the send time) -> 1 "
                   f"subscriber on '#'; {args.latency_rounds} rounds of "
                   f"{args.latency_duration / args.latency_rounds:g} s per broker (brokers taking turns, each round "
                   f"after {args.latency_warmup:g} s warm-up), samples pooled",
                   [("latency", [
                       ("p50 (ms)", "p50", 3, True),
                       ("p90 (ms)", "p90", 3, True),
                       ("p99 (ms)", "p99", 3, True),
                       ("p99.9 (ms)", "p99.9", 3, True),
                       ("max (ms)", "max", 3, True),
                       ("p99 of each round: min-max (ms)", "p99_rounds", None, False),
                       ("samples", "samples", 0, False),
                       ("broker CPU %", "broker_cpu", 0, False),
                       ("generator CPU % (publishers + subscriber)", "gen_cpu", 0, False),
                       ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
                       ("other CPU %: idle broker / rest", "other_cpu", None, False),
                   ])])
    out += section(results, f"Connections/s: loops of connect [+ TLS handshake] + CONNECT -> CONNACK + DISCONNECT "
                   f"+ close, {args.conn_concurrency * args.gen_procs} in flight for plain TCP, "
                   f"{args.tls_conn_concurrency * args.gen_procs} for mutual TLS ({args.gen_procs} processes); "
                   f"{args.conn_duration:g} s window after {args.conn_warmup:g} s warm-up. TLS: RSA 2048 device "
                   f"certificates from CreateKeysAndCertificate, no session resumption",
                   [(metric, [
                       (f"{what}: connections/s", "rate", 0, True),
                       (f"{what}: connect time p50 (ms)", "p50", 2, True),
                       (f"{what}: broker CPU ms per connection", "cpu_ms_per_conn", 3, True),
                       (f"{what}: broker CPU %", "broker_cpu", 0, False),
                       (f"{what}: generator CPU % (of which kernel)", "gen_cpu_str", None, False),
                       (f"{what}: other CPU %: idle broker / rest", "other_cpu", None, False),
                       (f"{what}: broker busy after the window (s)", "busy_after", 1, False),
                       (f"{what}: errors", "errors", 0, False),
                   ]) for metric, what in (("conn_plain", "plain TCP"), ("conn_tls", "mutual TLS"))],
                   first_errors=True)
    out += section(results, f"Resident memory per idle connection: RSS of the broker process after opening N idle "
                   f"connections (CONNECT, keep-alive 1200 s, clean session; settled {args.settle:g} s) minus RSS "
                   f"before, / N",
                   [(metric, [
                       (f"{what}: N connections opened", "opened", 0, False),
                       (f"{what}: still open when measured", "still_open", 0, False),
                       (f"{what}: KB per connection", "per_conn_kb", 1, True),
                       (f"{what}: RSS before (MB)", "rss0_mb", 1, False),
                       (f"{what}: RSS with N open (MB)", "rss1_mb", 1, False),
                       (f"{what}: connections opened/s (N open)", "open_rate", 0, True),
                       (f"{what}: failed", "failed", 0, False),
                   ]) for metric, what in (("idle_plain", "plain TCP"), ("idle_tls", "mutual TLS"))],
                   first_errors=True)
    out.append("Goals (issue 4):")
    q0 = [get(results, b, "qos0", "rate") for b in BROKERS]
    if all(q0):
        r = q0[1] / q0[0]
        out.append(f"- QoS 0 fan-in >= 0.5x Mosquitto: {r:.2f}x -> {'met' if r >= 0.5 else 'NOT met'}")
    p99 = [get(results, b, "latency", "p99") for b in BROKERS]
    if all(p99):
        r = p99[1] / p99[0]
        out.append(f"- p99 latency <= 2x Mosquitto's: {r:.2f}x -> {'met' if r <= 2 else 'NOT met'}")
    idle = results.get("localiot", {}).get("idle_tls")
    if idle and idle.get("count"):
        n = idle["count"]
        held = idle["opened"]
        if n >= 10000:
            held = idle.get("still_open", 0)
            ok = held >= 10000 and idle["alive"]
            out.append(f"- 10,000 concurrent idle TLS connections: {held:,} of {n:,} held, localiot RSS "
                       f"{idle['rss1'] / 2**20:,.0f} MB -> {'met' if ok else 'NOT met'}")
        else:
            out.append(f"- 10,000 concurrent idle TLS connections: not run ({n:,} in this run; pass --tls-10k)")
    else:
        why = results.get("localiot", {}).get("skipped", {}).get("idle_tls", "the idle test did not run")
        out.append(f"- 10,000 concurrent idle TLS connections: not measured ({why}; run with --tests idle --tls-10k)")
    out.append("")
    out.append(f"Total wall time {meta['wall']:.0f}s; {cores} CPUs; {platform.platform()}; python "
               f"{platform.python_version()}; generator: uvloop, {args.pub_procs}+1 processes for message tests, "
               f"{args.gen_procs} for connection tests; localiot: "
               f"{'--in-memory' if getattr(args, 'localiot_store', 'memory') == 'memory' else 'SQLite file store (--data-dir)'}, plain listener without "
               f"authentication (allow-all) for message tests")
    return "\n".join(out)


def derive(results: dict) -> None:
    for r in results.values():
        if "qos0" in r:
            r["qos0"]["rss_mb"] = r["qos0"]["rss"] / 2**20
        for k in ("qos0", "qos1", "latency"):
            if k in r:
                m = r[k]
                m["gen_cpu"] = m["pub_cpu"] + m["sub_cpu"]
                other = max(0.0, m["machine_cpu"] - m["broker_cpu"] - m["gen_cpu"] - m["idle_broker_cpu"])
                m["other_cpu"] = f"{m['idle_broker_cpu']:.0f} / {other:.0f}"
                # what the broker did per second of its own CPU: comparable when the machine is shared
                m["per_cpu_s"] = m["rate"] / (m["broker_cpu"] / 100) if m["broker_cpu"] > 0 else float("nan")
        if "qos1" in r and r["qos1"]["acked"]:
            r["qos1"]["unreceived_pct"] = max(0.0, 100 * (1 - r["qos1"]["rate"] / r["qos1"]["acked"]))
        for k in ("conn_plain", "conn_tls"):
            if k in r:
                m = r[k]
                other = max(0.0, m["machine_cpu"] - m["broker_cpu"] - m["gen_cpu"] - m["idle_broker_cpu"])
                m["other_cpu"] = f"{m['idle_broker_cpu']:.0f} / {other:.0f}"
                m["gen_cpu_str"] = f"{m['gen_cpu']:.0f} ({m['gen_sys_cpu']:.0f})"
                # broker CPU per connection: comparable when the machine is shared
                m["cpu_ms_per_conn"] = m["broker_cpu"] * 10 / m["rate"] if m["rate"] else float("nan")
        for k in ("idle_plain", "idle_tls"):
            if k in r and "rss0" in r[k]:
                r[k]["per_conn_kb"] = r[k]["per_conn"] / 1024
                r[k]["rss0_mb"] = r[k]["rss0"] / 2**20
                r[k]["rss1_mb"] = r[k]["rss1"] / 2**20


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
