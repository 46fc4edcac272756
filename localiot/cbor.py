"""CBOR for the MQTT doors that accept it (commands, fleet provisioning), via cbor2.

`loads` is strict the way a JSON parser is: one complete item and nothing
after it, failures as ValueError.
"""

from __future__ import annotations

import io

import cbor2


def dumps(value) -> bytes:
    return cbor2.dumps(value)


def loads(data: bytes):
    stream = io.BytesIO(bytes(data))
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORError, RecursionError) as error:
        raise ValueError(f"invalid CBOR: {error}") from None
    if stream.tell() != len(data):
        raise ValueError("invalid CBOR: data after the first item")
    return value
