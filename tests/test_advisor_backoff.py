"""How measured reconnection intervals are judged (localiot.advisor.cases.backoff.assess):
the rules AWS's reconnection cases describe, on intervals like those real devices produce."""

import random

import pytest

from localiot.advisor.cases.backoff import assess

SETUP = 0.03  # seconds a TLS connection takes to set up, in every measured interval


@pytest.mark.parametrize("intervals, jitter_wanted, status, words", [
    ([0.02, 0.03, 0.02, 0.025, 0.02], True, "FAIL", "without backoff"),
    ([1.0, 1.02, 0.99, 1.01, 1.0], True, "FAIL", "constant delay"),
    ([1.0, 2.0, 3.0, 4.0, 5.0], True, "FAIL", "linear backoff"),
    ([0.1 + SETUP, 0.2 + SETUP, 0.4 + SETUP, 0.8 + SETUP, 1.6 + SETUP], True, "PASS_WITH_WARNINGS", "without jitter"),
    ([0.1 + SETUP, 0.2 + SETUP, 0.4 + SETUP, 0.8 + SETUP, 1.6 + SETUP], False, "PASS", "without jitter"),
    ([0.437, 3.707, 7.316, 9.415, 21.2], True, "PASS", "with jitter"),  # measured: awsiotsdk 1.31's MQTT 5 client
    ([0.9, 0.3, 0.6, 0.2, 0.5], True, "FAIL", "do not grow"),
    ([0.12, 0.1, 0.7, 0.11, 0.1], True, "FAIL", "do not grow"),  # no backoff, one reconnection slowed down
])
def test_assess(intervals, jitter_wanted, status, words):
    got, why = assess(intervals, jitter_wanted)
    assert got == status and words in why, why


def test_full_jitter_passes_nearly_always():
    """Exponential backoff with full jitter (AWS's recommendation, the SDKs' default) from 1 s."""
    rng = random.Random(18)
    runs = [[rng.uniform(0, 2 ** i) + SETUP for i in range(5)] for _ in range(5000)]
    passed = sum(assess(intervals, True)[0] == "PASS" for intervals in runs)
    assert passed / len(runs) > 0.99


def test_backoff_without_jitter_is_recognised_despite_set_up_times():
    """Delays 0.2, 0.4 ... 3.2 s, each interval also holding a TLS set-up of 10 to 60 ms."""
    rng = random.Random(18)
    runs = [[0.2 * 2 ** i + rng.uniform(0.01, 0.06) for i in range(5)] for _ in range(2000)]
    warned = sum(assess(intervals, True)[0] == "PASS_WITH_WARNINGS" for intervals in runs)
    assert warned / len(runs) > 0.99
