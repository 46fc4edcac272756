"""MQTT topics and topic filters as NATS subjects.

An MQTT topic is a list of levels split by '/'; a NATS subject is a list of
tokens split by '.'. Each MQTT message of account A in region R travels on

    liot.m.<A>.<R>.<level 1>.<level 2>...<level n>

with every level (and the account and region) written as one token:

- a NATS token cannot be empty, and '.' splits tokens, '*' and '>' are
  wildcards, whitespace ends the subject: an empty level becomes the token
  '%', and the bytes '.', '*', '>', '%', every byte up to ' ' (whitespace,
  control characters), DEL and every non-ASCII byte of the level's UTF-8
  become %XX (upper-case hex). A level that is exactly '%' is '%25', so the
  mapping is one-to-one: two topics never share a subject.
- '$' is escaped too (%24): a NATS subject that starts with '$' is NATS's
  own ($SYS, $JS), and ours never start with it anyway (they start with
  `liot.`); `$aws/things/x/shadow/update` is `liot.m.A.R.%24aws.things.x.shadow.update`.

A subscription's filter becomes the subjects a node subscribes to:

- '+' (one whole level) is '*' (one whole token);
- '#' is '>' (one or more tokens), and since MQTT's '#' also matches the
  parent level ('a/#' matches 'a'), 'a/#' is two subjects: 'a.>' and 'a';
  '#' alone is '>' (every topic of the scope);
- MQTT's rule that wildcards in the first level skip '$' topics is not in
  the subject ('+' and '#' map to NATS wildcards that also match '%24aws'):
  the receiving node delivers through its own subscription trie, which
  applies it. Subjects are a superset filter; the trie decides.

Accounts are isolated by the subject prefix: a subscription of account A
never matches a subject of account B, and one node serves many accounts on
one NATS connection. A `$share/{group}/{filter}` subscription subscribes
the same subjects in the NATS queue group `q.<hash>` of (account, region,
group, filter), so NATS hands each message to one node that has a member.

Control traffic between nodes is on `liot.c.<kind>` (every node) and
`liot.n.<node id>` (one node).
"""

from __future__ import annotations

import hashlib

PREFIX = "liot.m."
CONTROL = "liot.c."
NODE = "liot.n."
_EMPTY = "%"
_SAFE = frozenset(range(0x21, 0x7F)) - {ord(c) for c in ".*>%$"}
_ESCAPED = {b: f"%{b:02X}" for b in range(256)}


def token(level: str) -> str:
    """One MQTT level (or account, region) as one NATS token."""
    if not level:
        return _EMPTY
    if level.isascii() and all(ord(c) in _SAFE for c in level):
        return level
    return "".join(chr(b) if b in _SAFE else _ESCAPED[b] for b in level.encode())


def untoken(tok: str) -> str:
    if tok == _EMPTY:
        return ""
    if "%" not in tok:
        return tok
    out, i = bytearray(), 0
    while i < len(tok):
        if tok[i] == "%":
            out.append(int(tok[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(ord(tok[i]))
            i += 1
    return out.decode()


def scope_prefix(account: str, region: str) -> str:
    return f"{PREFIX}{token(account)}.{token(region)}."


def topic_subject(account: str, region: str, topic: str) -> str:
    """The subject a message on `topic` travels on."""
    return scope_prefix(account, region) + ".".join(map(token, topic.split("/")))


def subject_topic(subject: str) -> tuple[str, str, str]:
    """(account, region, topic) of a message subject (the inverse of topic_subject)."""
    tokens = subject[len(PREFIX):].split(".")
    return untoken(tokens[0]), untoken(tokens[1]), "/".join(map(untoken, tokens[2:]))


def filter_subjects(account: str, region: str, topic_filter: str) -> list[str]:
    """The subjects that together match every topic the (non-shared) filter matches."""
    prefix = scope_prefix(account, region)
    levels = topic_filter.split("/")
    tokens = ["*" if level == "+" else ">" if level == "#" else token(level) for level in levels]
    if tokens[-1] == ">" and len(tokens) > 1:  # '#' matches the parent level too
        return [prefix + ".".join(tokens), prefix + ".".join(tokens[:-1])]
    return [prefix + ".".join(tokens)]


def queue_group(account: str, region: str, group: str, topic_filter: str) -> str:
    """The NATS queue group of one shared subscription (share names are not NATS-safe: hashed)."""
    digest = hashlib.blake2b(f"{account}\0{region}\0{group}\0{topic_filter}".encode(), digest_size=12).hexdigest()
    return "q." + digest
