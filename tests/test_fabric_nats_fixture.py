import socket
def test_nats(localiot_nats):
    host, port = localiot_nats[len("nats://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        assert s.recv(4096).startswith(b"INFO ")
