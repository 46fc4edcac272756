"""Device shadows: AWS's document semantics (`document`, pure functions) and the
shadow service (`service`) that both doors call: the iot-data HTTP API and the
broker's `$aws/things/<thing>/shadow/...` topics."""

from localiot.shadows.document import ShadowError

__all__ = ["ShadowError"]
