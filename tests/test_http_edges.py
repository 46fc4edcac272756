"""HTTP details a new user trips over (issue 11 item 6): a body over the limit
answers in the service's JSON error format on the API port and on the ALPN
port, and iot-data Publish accepts `POST /topics/a/b` with literal slashes on
the API port as it does on the TLS port."""

import json
import socket
import ssl
import urllib.request

import pytest

from conftest import make_client
from test_mqtt_tls import ALLOW_ALL, ca_file, new_certificate

BIG = b"{" + b" " * (1024 * 1024) + b"}"


def tls_exchange(server, tmp_path, data: bytes, cert=None) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one raw HTTP/1.1 exchange on the ALPN port."""
    port = int(server.app.runtime.listeners["mqtt-alpn"].rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=ca_file(server, tmp_path))
    context.set_alpn_protocols(["http/1.1"])
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the server answered and closed before the whole body was sent
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except (ConnectionResetError, ssl.SSLError):
                pass
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def post(path: str, body: bytes) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), len(body))) + body


def test_a_body_over_the_limit_on_the_alpn_port_answers_json(localiot_server, iot, tmp_path):
    status, headers, document = tls_exchange(localiot_server, tmp_path, post("/things/big", BIG))
    assert (status, headers["x-amzn-errortype"], headers["content-type"]) == (
        413, "RequestEntityTooLargeException", "application/json")
    assert document == {"message": "The request body exceeds the maximum size of 1048576 bytes"}
    assert iot.list_things()["things"] == []


def test_an_https_publish_over_the_limit_answers_json(localiot_server, iot, tmp_path):
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    status, headers, document = tls_exchange(localiot_server, tmp_path, post("/topics/big?qos=1", BIG), cert)
    assert (status, headers["content-type"]) == (413, "application/json")
    assert "maximum size" in document["message"]


def test_publish_with_literal_slashes_on_the_api_port(localiot_server):
    request = urllib.request.Request(f"{localiot_server.endpoint}/topics/plant/line-1/temp?qos=1&retain=true",
                                     data=b'{"t": 21}', method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    data = make_client(localiot_server, "iot-data")
    assert data.get_retained_message(topic="plant/line-1/temp")["payload"] == b'{"t": 21}'


def test_publish_with_an_encoded_topic_still_works(localiot_server):
    data = make_client(localiot_server, "iot-data")
    data.publish(topic="plant/line-2/temp", qos=1, retain=True, payload=b"22")
    assert data.get_retained_message(topic="plant/line-2/temp")["payload"] == b"22"


def test_a_query_without_escapes_reads_as_yarl_reads_it():
    """server._plain_query (the API handler's query for a target without %-escapes) against
    yarl's URL.query, which the handler reads otherwise: same names, values and order."""
    import random

    from yarl import URL

    from localiot.server import _plain_query

    rng = random.Random(22)
    for _ in range(5000):
        query_string = "".join(rng.choice("ab=&+;x1?/:-_.~") for _ in range(rng.randrange(1, 16)))
        expected = list(URL.build(path="/things", query_string=query_string, encoded=True).query.items())
        assert list(_plain_query(query_string).items()) == expected, query_string
