"""Device-side metrics reports (AWS IoT Device Defender guide, "Device-side
metrics" and its document specification): JSON or CBOR, long or short key
names, validated, turned into datapoints, evaluated, and answered on
`$aws/things/{thing}/defender/metrics/{json|cbor}/accepted|rejected`.

Rejections carry AWS's error codes: `Malformed` (not a JSON / CBOR object) and
`InvalidPayload` (the document breaks the specification: header, report id,
version, metric shapes, port ranges, unknown or mistyped custom metrics).
"""

from __future__ import annotations

import ipaddress
import json

from localiot import cbor
from localiot.services.defender import detect_ml, metrics_export
from localiot.services.defender.detect_eval import evaluate

SHORT = {"hed": "header", "rid": "report_id", "v": "version", "met": "metrics", "tp": "listening_tcp_ports",
         "up": "listening_udp_ports", "pts": "ports", "pt": "port", "if": "interface", "t": "total",
         "ns": "network_stats", "bi": "bytes_in", "bo": "bytes_out", "pi": "packets_in", "po": "packets_out",
         "tc": "tcp_connections", "ec": "established_connections", "cs": "connections", "li": "local_interface",
         "lp": "local_port", "rad": "remote_addr", "cmet": "custom_metrics"}
CUSTOM_FIELD = {"number": "number", "number-list": "number_list", "string-list": "string_list",
                "ip-address-list": "ip_list"}


class Rejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _long(value, custom: bool = False):
    if isinstance(value, dict):
        return {(k if custom else SHORT.get(k, k)): _long(v, custom=(not custom and SHORT.get(k, k) == "custom_metrics"))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_long(v) for v in value]
    return value


def decode(payload: bytes, fmt: str) -> dict:
    try:
        doc = cbor.loads(payload) if fmt == "cbor" else json.loads(payload)
    except Exception:  # noqa: BLE001 - any decoding failure is a malformed report
        raise Rejected("Malformed", f"The report is not valid {fmt.upper()}.") from None
    if not isinstance(doc, dict):
        raise Rejected("Malformed", "The report must be an object.")
    return _long(doc)


def _int(value, what: str, low: int = 0, high: int = 2 ** 63) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Rejected("InvalidPayload", f"{what} must be an integer between {low} and {high}.")
    return value


def _ports(section, what: str) -> list[int]:
    if not isinstance(section, dict) or not isinstance(section.get("ports", []), list):
        raise Rejected("InvalidPayload", f"{what} must be an object with a list of ports.")
    ports = []
    for item in section.get("ports", []):
        if not isinstance(item, dict):
            raise Rejected("InvalidPayload", f"{what}.ports must hold objects.")
        ports.append(_int(item.get("port"), f"{what}.ports.port", 0, 65535))
    if "total" in section:
        _int(section["total"], f"{what}.total")
    return sorted(set(ports))


def _address(text, what: str) -> str:
    host = text.rsplit(":", 1)[0].strip("[]") if isinstance(text, str) and ":" in text else text
    try:
        return str(ipaddress.ip_address(host))
    except (ValueError, TypeError):
        raise Rejected("InvalidPayload", f"{what} {text!r} is not an IP address with a port.") from None


def values_of(tx, report: dict) -> tuple[int, dict]:
    """(report id, {metric: value}) of a decoded report, or Rejected."""
    header = report.get("header")
    if not isinstance(header, dict):
        raise Rejected("InvalidPayload", "The report has no header.")
    report_id = _int(header.get("report_id"), "header.report_id")
    version = header.get("version")
    if not isinstance(version, str) or version.split(".")[0] != "1" or not version.replace(".", "").isdigit():
        raise Rejected("InvalidPayload", "header.version must be 1.0.")
    metrics, custom = report.get("metrics"), report.get("custom_metrics")
    if metrics is None and custom is None:
        raise Rejected("InvalidPayload", "The report has neither metrics nor custom_metrics.")
    out: dict = {}
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise Rejected("InvalidPayload", "metrics must be an object.")
        for key, metric in (("listening_tcp_ports", "tcp"), ("listening_udp_ports", "udp")):
            if key in metrics:
                ports = _ports(metrics[key], key)
                out[f"aws:listening-{metric}-ports"] = ports
                out[f"aws:num-listening-{metric}-ports"] = len(ports)
        if "network_stats" in metrics:
            stats = metrics["network_stats"]
            if not isinstance(stats, dict):
                raise Rejected("InvalidPayload", "network_stats must be an object.")
            for key, metric in (("bytes_in", "aws:all-bytes-in"), ("bytes_out", "aws:all-bytes-out"),
                                ("packets_in", "aws:all-packets-in"), ("packets_out", "aws:all-packets-out")):
                if key in stats:
                    out[metric] = _int(stats[key], f"network_stats.{key}")
        if "tcp_connections" in metrics:
            est = (metrics["tcp_connections"] or {}).get("established_connections") if isinstance(
                metrics["tcp_connections"], dict) else None
            if not isinstance(est, dict) or not isinstance(est.get("connections", []), list):
                raise Rejected("InvalidPayload", "tcp_connections.established_connections must list connections.")
            remotes = []
            for conn in est.get("connections", []):
                if not isinstance(conn, dict) or "remote_addr" not in conn:
                    raise Rejected("InvalidPayload", "Each connection needs a remote_addr.")
                remotes.append(_address(conn["remote_addr"], "remote_addr"))
            out["aws:num-established-tcp-connections"] = _int(est.get("total", len(remotes)),
                                                              "established_connections.total")
            out["aws:destination-ip-addresses"] = sorted(set(remotes))
    if custom is not None:
        if not isinstance(custom, dict):
            raise Rejected("InvalidPayload", "custom_metrics must be an object.")
        for name, entries in custom.items():
            doc = tx.get("custom-metric", name)
            if doc is None:
                raise Rejected("InvalidPayload", f"Custom metric {name} does not exist.")
            field = CUSTOM_FIELD[doc["metricType"]]
            if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict) \
                    or field not in entries[0]:
                raise Rejected("InvalidPayload", f"Custom metric {name} must be a list of one {{\"{field}\": ...}}.")
            out[name] = _custom(name, field, entries[0][field])
    return report_id, out


def _custom(name: str, field: str, value):
    if field == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Rejected("InvalidPayload", f"Custom metric {name} must be a number.")
        return value
    if not isinstance(value, list):
        raise Rejected("InvalidPayload", f"Custom metric {name} must be a list.")
    if field == "number_list" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise Rejected("InvalidPayload", f"Custom metric {name} must be a list of numbers.")
    if field == "string_list" and not all(isinstance(v, str) for v in value):
        raise Rejected("InvalidPayload", f"Custom metric {name} must be a list of strings.")
    if field == "ip_list":
        return [_address(v + ":0" if isinstance(v, str) and ":" not in v else v, name) for v in value]
    return value


def receive(ctx, thing: str, payload: bytes, fmt: str) -> None:
    """Serve one report: evaluate it and queue the reply for after the commit."""
    topic = f"$aws/things/{thing}/defender/metrics/{fmt}"
    report_id = None
    try:
        report = decode(payload, fmt)
        rid = (report.get("header") or {}).get("report_id") if isinstance(report.get("header"), dict) else None
        report_id = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
        report_id, values = values_of(ctx.tx, report)
    except Rejected as rejected:
        reply = {"thingName": thing, "status": "REJECTED",
                 "statusDetails": {"ErrorCode": rejected.code, "ErrorMessage": rejected.message},
                 "timestamp": int(ctx.now() * 1000)}
        if report_id is not None:
            reply["reportId"] = report_id
        _reply(ctx, f"{topic}/rejected", reply, fmt)
        return
    cache: dict = {}
    evaluate(ctx, thing, values, ("device", "custom"), cache)
    detect_ml.flush(ctx, cache)
    metrics_export.send(ctx, cache)
    _reply(ctx, f"{topic}/accepted", {"thingName": thing, "reportId": report_id, "status": "ACCEPTED",
                                      "timestamp": int(ctx.now() * 1000)}, fmt)


def _reply(ctx, topic: str, body: dict, fmt: str) -> None:
    ctx.events.append((topic, cbor.dumps(body) if fmt == "cbor" else json.dumps(body, separators=(",", ":")).encode()))
