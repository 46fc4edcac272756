"""MQTT 3.1.1 and 5.0 packets: encoding, decoding and incremental framing.

Pure functions and small value classes, no I/O. A decoding problem raises
`MalformedPacket` carrying the MQTT 5 reason code the server should answer
with (0x81 Malformed Packet, 0x82 Protocol Error, ...); the broker closes
the connection, sending a DISCONNECT with that code to v5 clients.

Modules: `constants` (packet types, reason codes, the property table),
`packets` (value classes), `wire` (primitive types and properties),
`decode` (framing, the Parser, one decoder per packet type, among them
`decode_publish`, the one PUBLISH decoder) and `encode`. Import the names
from here.
"""

from localiot.broker.codec.constants import *  # noqa: F401,F403
from localiot.broker.codec.decode import (  # noqa: F401
    Parser, decode, decode_connect, decode_connect_plain, decode_publish, split_packet,
)
from localiot.broker.codec.encode import encode, encode_connect, encode_publish, frame  # noqa: F401
from localiot.broker.codec.packets import (  # noqa: F401
    Ack, Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Publish, Suback, Subscribe, SubOptions,
    Unsuback, Unsubscribe, Will,
)
from localiot.broker.codec.wire import (  # noqa: F401
    _Reader, decode_properties, decode_utf8, decode_varint, encode_binary, encode_properties, encode_string,
    encode_varint,
)
