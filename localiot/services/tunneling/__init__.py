"""AWS IoT Secure Tunneling (`iotsecuretunneling`): the tunnel resource, its
access tokens and its lifetime. The relay that carries the tunnelled bytes
lives in `localiot.tunneling`; it reaches tunnels only through `access`."""
