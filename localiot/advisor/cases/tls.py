"""TLS test cases. For the server-certificate cases the endpoint disconnects
the device and presents the case's certificate (localiot.advisor.certs) to
every new handshake until the device has tried one; a device must refuse a
certificate for another name, one signed by nobody it trusts and an expired
one, and must accept a large one."""

from __future__ import annotations

from localiot.advisor import certs
from localiot.advisor import journal as j
from localiot.advisor.cases.base import CaseRun
from localiot.advisor.cases.mqtt import _deliver_and_expect_puback
from localiot.advisor.certs import AWS_IOT_CIPHERS, AWS_IOT_RECOMMENDED

CASES = {}
MAX_FRAGMENT = 16384  # bytes of plaintext in a full-size TLS record


def case(test_id: str):
    def register(fn):
        CASES[test_id] = fn
        return fn
    return register


async def _handshake_with(c: CaseRun, variant: str, what: str):
    """Present `variant`'s server certificate to the device's next handshake; its outcome event."""
    c.run.tls_variant = variant
    mark = c.journal.mark()
    c.run.hang_up_all()
    c.log(f"New handshakes now get the {variant} server certificate; the device was disconnected.")
    return await c.wait(lambda e: e.kind in (j.HANDSHAKE, j.HANDSHAKE_FAILED) and e.get("variant") == variant,
                        what, since=mark)


async def _must_refuse(c: CaseRun, variant: str, described: str, alert_wanted: bool = False) -> None:
    event = await _handshake_with(c, variant, f"the device to attempt a TLS handshake ({described})")
    if event.kind == j.HANDSHAKE:
        c.run.hang_up_all()
        c.fail(f"The device completed the TLS handshake with {described}.")
    reason = event.get("reason")
    c.log(f"The device refused the handshake: {reason}.")
    if alert_wanted and "ALERT" not in str(reason).upper():
        c.warn("The device closed the connection without sending a TLS alert.")


@case("TLS_Connect")
async def tls_connect(c: CaseRun) -> None:
    event = await c.wait(lambda e: e.kind == j.HANDSHAKE and e.get("variant") == certs.DEFAULT,
                         "the device to complete a TLS handshake", since=0)
    c.log(f"TLS handshake completed: {event.get('tls_version')}, {event.get('cipher')}.")


@case("TLS_Support_AWS_IoT_Cipher_Suites")
async def cipher_suites(c: CaseRun) -> None:
    event = await _handshake_with(c, certs.CIPHERS, "a TLS handshake offering every cipher suite the device has")
    if event.kind == j.HANDSHAKE_FAILED:
        c.fail(f"The TLS handshake failed: {event.get('reason')}.")
    offered = event.get("shared") or []
    supported = [s for s in offered if s in AWS_IOT_CIPHERS]
    recommended = [s for s in offered if s in AWS_IOT_RECOMMENDED]
    unsupported = [s for s in offered if s not in AWS_IOT_CIPHERS]
    c.log(f"The device offered {len(offered)} cipher suites: {', '.join(offered)}.")
    c.log(f"Negotiated {event.get('cipher')} over {event.get('tls_version')}.")
    if not supported:
        c.fail("None of the device's cipher suites is supported by AWS IoT.")
    if not recommended:
        c.warn("The device offers none of AWS IoT's recommended cipher suites.")
    if unsupported:
        c.warn("The device also offers cipher suites AWS IoT does not support: " + ", ".join(unsupported) + ".")


@case("TLS_Incorrect_Subject_Name_Server_Cert")
async def wrong_subject(c: CaseRun) -> None:
    await _must_refuse(c, certs.WRONG_SUBJECT, f"a trusted server certificate issued for {certs.WRONG_NAME}")


@case("TLS_Unsecure_Server_Cert")
async def unsecure(c: CaseRun) -> None:
    await _must_refuse(c, certs.SELF_SIGNED, "a self-signed server certificate (not signed by a trusted CA)")


@case("TLS_Expired_Server_Cert")
async def expired(c: CaseRun) -> None:
    await _must_refuse(c, certs.EXPIRED, "an expired server certificate", alert_wanted=True)


@case("TLS_Large_Size_Server_Cert")
async def large(c: CaseRun) -> None:
    event = await _handshake_with(c, certs.LARGE, "a TLS handshake with a large server certificate")
    if event.kind == j.HANDSHAKE_FAILED:
        c.fail(f"The device failed the TLS handshake with a large server certificate: {event.get('reason')}.")
    c.log("The device completed the TLS handshake with the large server certificate.")


@case("TLS_Receive_Maximum_Size_Fragments")
async def max_fragments(c: CaseRun) -> None:
    topic = c.config.get("TRIGGER_TOPIC")
    if not topic:
        event = await c.wait(lambda e: e.kind == j.SUBSCRIBE and any(
            q >= 1 and not f.startswith("$") and "+" not in f and "#" not in f
            for f, q in zip(e["filters"], e["qos"])), "a QoS 1 SUBSCRIBE to a topic", since=0)
        topic = next(f for f, q in zip(event["filters"], event["qos"]) if q >= 1 and not f.startswith("$"))
    fill = "x" * (2 * MAX_FRAGMENT)
    form = c.config.get("PAYLOAD_FORMAT") or "${payload}"
    payload = (form.replace("${payload}", fill) if "${payload}" in form else form + fill).encode()
    c.log(f"Sending {len(payload)} bytes: at least one full-size ({MAX_FRAGMENT} byte) TLS record.")
    await _deliver_and_expect_puback(c, topic, payload)
