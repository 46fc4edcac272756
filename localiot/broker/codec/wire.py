"""MQTT's primitive types on the wire: variable byte integers, strings,
binary data, a bounds-checked reader, and MQTT 5 properties."""

from __future__ import annotations

from localiot.broker.codec.constants import (
    BINARY, BYTE, FOUR, MAX_REMAINING_LENGTH, PACKET_NAMES, PROPERTIES, PROPERTY_IDS, REPEATABLE, TWO,
    UTF8, VARINT, BOOLEAN_PROPERTIES, NONZERO_PROPERTIES, MalformedPacket, protocol_error,
)


# primitives -----------------------------------------------------------------
def encode_varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    if n > MAX_REMAINING_LENGTH:
        raise ValueError("variable byte integer out of range")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf, pos: int, end: int) -> tuple[int, int] | None:
    """(value, next position), or None when more bytes are needed."""
    value = shift = 0
    for i in range(4):
        if pos + i >= end:
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def encode_string(s: str) -> bytes:
    raw = s.encode()
    if len(raw) > 65535:
        raise ValueError("string longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def encode_binary(b: bytes) -> bytes:
    if len(b) > 65535:
        raise ValueError("binary data longer than 65535 bytes")
    return len(b).to_bytes(2, "big") + bytes(b)


class _Reader:
    """Cursor over one packet body; every read checks the bounds."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf, pos: int = 0, end: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedPacket("packet ends early")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        if self.pos + 2 > self.end:
            raise MalformedPacket("packet ends early")
        v = (self.buf[self.pos] << 8) | self.buf[self.pos + 1]
        self.pos += 2
        return v

    def u32(self) -> int:
        if self.pos + 4 > self.end:
            raise MalformedPacket("packet ends early")
        v = int.from_bytes(self.buf[self.pos:self.pos + 4], "big")
        self.pos += 4
        return v

    def varint(self) -> int:
        got = decode_varint(self.buf, self.pos, self.end)
        if got is None:
            raise MalformedPacket("packet ends early")
        value, self.pos = got
        return value

    def binary(self) -> bytes:
        n = self.u16()
        if self.pos + n > self.end:
            raise MalformedPacket("length exceeds the packet")
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def string(self) -> str:
        return decode_utf8(self.binary())

    def rest(self) -> bytes:
        b = bytes(self.buf[self.pos:self.end])
        self.pos = self.end
        return b


def decode_utf8(raw: bytes) -> str:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("string is not valid UTF-8") from None
    if "\x00" in s:
        raise MalformedPacket("string contains U+0000")
    return s


# properties -----------------------------------------------------------------
def decode_properties(r: _Reader, packet_type: int) -> dict:
    length = r.varint()
    end = r.pos + length
    if end > r.end:
        raise MalformedPacket("property length exceeds the packet")
    props: dict = {}
    if not length:
        return props
    sub = _Reader(r.buf, r.pos, end)
    while sub.pos < end:
        pid = sub.varint()
        spec = PROPERTIES.get(pid)
        if spec is None:
            raise MalformedPacket(f"unknown property 0x{pid:02X}")
        name, kind, allowed = spec
        if packet_type not in allowed:
            raise protocol_error(f"property {name} is not allowed in {PACKET_NAMES.get(packet_type, 'will')}")
        if kind == BYTE:
            value = sub.byte()
        elif kind == TWO:
            value = sub.u16()
        elif kind == FOUR:
            value = sub.u32()
        elif kind == VARINT:
            value = sub.varint()
        elif kind == UTF8:
            value = sub.string()
        elif kind == BINARY:
            value = sub.binary()
        else:
            value = (sub.string(), sub.string())
        if name in BOOLEAN_PROPERTIES and value > 1:
            raise protocol_error(f"property {name} must be 0 or 1")
        if name in NONZERO_PROPERTIES and value == 0:
            raise protocol_error(f"property {name} must not be 0")
        if name in REPEATABLE:
            props.setdefault(name, []).append(value)
        elif name in props:
            raise protocol_error(f"property {name} appears twice")
        else:
            props[name] = value
    r.pos = end
    return props


def encode_properties(props: dict | None) -> bytes:
    if not props:
        return b"\x00"
    out = bytearray()
    for name, value in props.items():
        if value is None:
            continue
        pid, kind = PROPERTY_IDS[name]
        if name == "user_property":
            values = value  # a list of (key, value) pairs
        elif name == "subscription_identifier" and isinstance(value, (list, tuple)):
            values = value
        else:
            values = (value,)
        for v in values:
            out += encode_varint(pid)
            if kind == BYTE:
                out.append(int(v))
            elif kind == TWO:
                out += int(v).to_bytes(2, "big")
            elif kind == FOUR:
                out += int(v).to_bytes(4, "big")
            elif kind == VARINT:
                out += encode_varint(int(v))
            elif kind == UTF8:
                out += encode_string(v)
            elif kind == BINARY:
                out += encode_binary(v)
            else:
                out += encode_string(v[0]) + encode_string(v[1])
    return encode_varint(len(out)) + bytes(out)
