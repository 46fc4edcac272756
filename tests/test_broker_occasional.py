"""The connection's companion of seldom-changed fields (localiot.broker.occasional): shared
companions are never written to; a change gives the connection its own copy."""

from localiot.broker import occasional


class _Holder:
    __slots__ = ("more",)

    def __init__(self, more):
        self.more = more


for _name in ("send_will", "disconnect_reason", "client_initiated", "backlogged", "reading_paused"):
    setattr(_Holder, _name, occasional.field(_name))


def test_a_change_on_a_shared_companion_gives_the_connection_a_copy():
    gone, other = _Holder(occasional.CLIENT_GONE), _Holder(occasional.CLIENT_GONE)
    gone.reading_paused = True
    assert gone.more is not occasional.CLIENT_GONE and other.more is occasional.CLIENT_GONE
    assert (gone.disconnect_reason, gone.client_initiated, gone.send_will, gone.reading_paused) == (
        "CLIENT_INITIATED_DISCONNECT", True, False, True)
    assert occasional.CLIENT_GONE.reading_paused is False and occasional.ORDINARY.disconnect_reason == "CONNECTION_LOST"


def test_writing_a_shared_companion_s_own_value_makes_no_copy():
    held = _Holder(occasional.CLIENT_GONE)
    held.backlogged = False
    held.send_will = False
    assert held.more is occasional.CLIENT_GONE
    ordinary = _Holder(occasional.ORDINARY)
    assert occasional.of(ordinary) is not occasional.ORDINARY and ordinary.more.disconnect_reason == "CONNECTION_LOST"
