"""The states of a broker connection (localiot.broker.connection), in a leaf module
so that the modules a connection uses can name them too."""

NEW, AUTHENTICATING, CONNECTED, CLOSED = 0, 1, 2, 3
