"""QoS 1 messages on their way to a connected persistent session are stored
before the publisher's PUBACK: a server killed with SIGKILL delivers them
after its restart (issue 12 item 2)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from localiot.broker import codec
from localiot.broker.codec import Ack, Subscribe, SubOptions
from localiot.testing import RawClient
from test_broker_mqtt import V3, WAIT

BIN = Path(sys.executable).parent
COUNT = 150  # more than the in-flight window (100): some wait on the broker, some are on the wire


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir, port):
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--mqtt-plain", "--mqtt-plain-port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            return process
    raise AssertionError("localiot serve did not start")


def test_sigkill_keeps_qos1_messages_in_flight_to_a_connected_persistent_session(tmp_path):
    port = _free_port()
    server = _serve(tmp_path, port)
    try:
        device = RawClient.plain(port)
        assert device.connect("device", clean_start=False).reason_code == 0
        device.send(Subscribe(1, [("cmd/#", SubOptions(1))]))
        assert device.recv().reason_codes == [1]
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="app", protocol=V3)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        infos = [publisher.publish(f"cmd/{i % 3}", str(i).encode(), qos=1) for i in range(COUNT)]
        for info in infos:  # every one acknowledged to the publisher
            info.wait_for_publish(WAIT)
            assert info.is_published()
        first = device.recv()  # the device is connected and receiving, acknowledging only the first
        assert first.payload == b"0"
        device.send(Ack(codec.PUBACK, first.packet_id))
        time.sleep(0.2)  # (let that PUBACK reach the server before it dies)
        server.send_signal(signal.SIGKILL)
        server.wait()
        publisher.loop_stop()
        device.close()
        server = _serve(tmp_path, port)
        back = RawClient.plain(port)
        assert back.connect("device", clean_start=False).session_present
        got = []
        back.sock.settimeout(WAIT)
        while len(got) < COUNT - 1:
            packet = back.recv()
            assert packet is not None, f"got {len(got)} of {COUNT - 1}"
            got.append(int(packet.payload))
            back.send(Ack(codec.PUBACK, packet.packet_id))
        assert got == list(range(1, COUNT))  # all but the acknowledged one, in order
        back.close()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
