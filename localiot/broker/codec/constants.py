"""MQTT numbers: packet types, protocol levels, reason codes, the MQTT 5
property table, and the error every decoder raises."""

# packet types ---------------------------------------------------------------
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
WILL = 0  # pseudo packet type for the will properties inside CONNECT

PACKET_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK", PUBREC: "PUBREC",
    PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

MQTT311, MQTT5 = 4, 5

# the flags every packet type but PUBLISH must carry in its first byte
FIXED_FLAGS = {CONNECT: 0, CONNACK: 0, PUBACK: 0, PUBREC: 0, PUBREL: 2, PUBCOMP: 0, SUBSCRIBE: 2, SUBACK: 0,
               UNSUBSCRIBE: 2, UNSUBACK: 0, PINGREQ: 0, PINGRESP: 0, DISCONNECT: 0, AUTH: 0}

# MQTT 5 reason codes the broker uses
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
NO_SUBSCRIPTION_EXISTED = 0x11
DISCONNECT_WITH_WILL = 0x04
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
IMPLEMENTATION_SPECIFIC_ERROR = 0x83
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_IDENTIFIER_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_BUSY = 0x89
BANNED = 0x8A
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_IDENTIFIER_IN_USE = 0x91
PACKET_IDENTIFIER_NOT_FOUND = 0x92
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
MESSAGE_RATE_TOO_HIGH = 0x96
QUOTA_EXCEEDED = 0x97
ADMINISTRATIVE_ACTION = 0x98
PAYLOAD_FORMAT_INVALID = 0x99
RETAIN_NOT_SUPPORTED = 0x9A
QOS_NOT_SUPPORTED = 0x9B
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
CONNECTION_RATE_EXCEEDED = 0x9F
SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

# MQTT 3.1.1 CONNACK return codes
V3_ACCEPTED, V3_BAD_VERSION, V3_ID_REJECTED, V3_UNAVAILABLE, V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED = 0, 1, 2, 3, 4, 5
V3_SUBACK_FAILURE = 0x80

MAX_REMAINING_LENGTH = 268_435_455


class MalformedPacket(Exception):
    """The peer sent bytes that are not a valid packet; close the connection."""

    def __init__(self, message: str, reason_code: int = MALFORMED_PACKET):
        super().__init__(message)
        self.reason_code = reason_code


def protocol_error(message: str) -> MalformedPacket:
    return MalformedPacket(message, PROTOCOL_ERROR)


# MQTT 5 properties ----------------------------------------------------------
BYTE, TWO, FOUR, VARINT, UTF8, BINARY, PAIR = range(7)
_ALL = frozenset({CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
                  UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH, WILL})
_ACKS = frozenset({CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH})

PROPERTIES: dict[int, tuple[str, int, frozenset]] = {
    0x01: ("payload_format_indicator", BYTE, frozenset({PUBLISH, WILL})),
    0x02: ("message_expiry_interval", FOUR, frozenset({PUBLISH, WILL})),
    0x03: ("content_type", UTF8, frozenset({PUBLISH, WILL})),
    0x08: ("response_topic", UTF8, frozenset({PUBLISH, WILL})),
    0x09: ("correlation_data", BINARY, frozenset({PUBLISH, WILL})),
    0x0B: ("subscription_identifier", VARINT, frozenset({PUBLISH, SUBSCRIBE})),
    0x11: ("session_expiry_interval", FOUR, frozenset({CONNECT, CONNACK, DISCONNECT})),
    0x12: ("assigned_client_identifier", UTF8, frozenset({CONNACK})),
    0x13: ("server_keep_alive", TWO, frozenset({CONNACK})),
    0x15: ("authentication_method", UTF8, frozenset({CONNECT, CONNACK, AUTH})),
    0x16: ("authentication_data", BINARY, frozenset({CONNECT, CONNACK, AUTH})),
    0x17: ("request_problem_information", BYTE, frozenset({CONNECT})),
    0x18: ("will_delay_interval", FOUR, frozenset({WILL})),
    0x19: ("request_response_information", BYTE, frozenset({CONNECT})),
    0x1A: ("response_information", UTF8, frozenset({CONNACK})),
    0x1C: ("server_reference", UTF8, frozenset({CONNACK, DISCONNECT})),
    0x1F: ("reason_string", UTF8, _ACKS),
    0x21: ("receive_maximum", TWO, frozenset({CONNECT, CONNACK})),
    0x22: ("topic_alias_maximum", TWO, frozenset({CONNECT, CONNACK})),
    0x23: ("topic_alias", TWO, frozenset({PUBLISH})),
    0x24: ("maximum_qos", BYTE, frozenset({CONNACK})),
    0x25: ("retain_available", BYTE, frozenset({CONNACK})),
    0x26: ("user_property", PAIR, _ALL),
    0x27: ("maximum_packet_size", FOUR, frozenset({CONNECT, CONNACK})),
    0x28: ("wildcard_subscription_available", BYTE, frozenset({CONNACK})),
    0x29: ("subscription_identifier_available", BYTE, frozenset({CONNACK})),
    0x2A: ("shared_subscription_available", BYTE, frozenset({CONNACK})),
}
PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind, _) in PROPERTIES.items()}
# Properties that may appear more than once; decoded as lists.
REPEATABLE = frozenset({"user_property", "subscription_identifier"})
BOOLEAN_PROPERTIES = frozenset({"payload_format_indicator", "request_problem_information", "request_response_information",
                      "maximum_qos", "retain_available", "wildcard_subscription_available",
                      "subscription_identifier_available", "shared_subscription_available"})
NONZERO_PROPERTIES = frozenset({"receive_maximum", "maximum_packet_size", "subscription_identifier"})
