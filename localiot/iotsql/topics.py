"""MQTT topic filters of the FROM clause: validation and matching."""

from __future__ import annotations


def validate_topic_filter(topic_filter: str) -> str | None:
    """None when `topic_filter` is a valid MQTT topic filter, else what is wrong."""
    if not topic_filter:
        return "it is empty"
    if "\x00" in topic_filter:
        return "it contains a NUL character"
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "'#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: '+' is exactly one level, '#' the rest (including the parent level).
    Wildcards in the first level do not match topics that start with '$'."""
    if not topic:
        return False
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)
