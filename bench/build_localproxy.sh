#!/bin/sh
# Build AWS's Secure Tunneling localproxy (aws-samples/aws-iot-securetunneling-localproxy)
# against the system's Boost / protobuf / OpenSSL, for tests/test_tunneling_real_localproxy.py
# and `bench/tunneling.py --localproxy`.
#
#   bench/build_localproxy.sh            # Debian/Ubuntu; installs build packages with apt-get as root
#
# The binary lands in $LOCALPROXY_PREFIX/bin/localproxy (default ~/.cache/localiot/localproxy),
# where the tests and the bench look for it after $LOCALIOT_LOCALPROXY and PATH.
# LOCALPROXY_SOURCE=<dir> builds an existing checkout instead of cloning LOCALPROXY_REF.
# Takes about 11 minutes at -j2 (most of it Boost.Beast templates).
set -eu

REF=${LOCALPROXY_REF:-v3.3.1}  # 8a71618acf536923e882387e8d9eca9dbc7fdbe2, the version tested here
PREFIX=${LOCALPROXY_PREFIX:-$HOME/.cache/localiot/localproxy}
JOBS=${JOBS:-2}

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        git g++ make cmake libboost-all-dev libprotobuf-dev protobuf-compiler libssl-dev zlib1g-dev
fi

if [ -n "${LOCALPROXY_SOURCE:-}" ]; then
    SRC=$LOCALPROXY_SOURCE
else
    SRC=$PREFIX/src
    rm -rf "$SRC"
    git clone --depth 1 --branch "$REF" https://github.com/aws-samples/aws-iot-securetunneling-localproxy.git "$SRC"
fi

mkdir -p "$SRC/build" "$PREFIX/bin"
cd "$SRC/build"
# system dependencies: Debian's Boost 1.74 and protobuf instead of the pinned versions the project fetches
cmake .. -DBUILD_TESTS=OFF -DLOCALPROXY_DEP_MODE=system -DBOOST_PKG_VERSION= -DPROTOBUF_PKG_VERSION= \
    -DCMAKE_BUILD_TYPE=Release
make -j"$JOBS" localproxy
cp bin/localproxy "$PREFIX/bin/localproxy"
"$PREFIX/bin/localproxy" --version
echo "built $PREFIX/bin/localproxy"
