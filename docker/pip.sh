#!/bin/sh
# pip of the image's build stage (/opt/venv), with the index and CA bundle the build was given.
#
# The Dockerfile's build args arrive here as environment variables: PIP_INDEX_URL,
# PIP_EXTRA_INDEX_URL and PIP_TRUSTED_HOST are pip's own and are dropped when empty. Every *.crt
# and *.pem file in docker/ca/ (copied to /tmp/ca) is appended to pip's own roots (certifi) and pip
# trusts the union (PIP_CERT, which the pip processes that build sdists inherit). The bundle lives
# in the build stage only.
set -eu

for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        unset "$name"
    fi
done

extra=$(find /tmp/ca -maxdepth 1 -type f \( -name '*.crt' -o -name '*.pem' \) 2>/dev/null | sort)
if [ -n "$extra" ]; then
    bundle=/tmp/pip-ca-bundle.pem
    if [ ! -s "$bundle" ]; then
        roots=$(/opt/venv/bin/python -c 'from pip._vendor import certifi; print(certifi.where())')
        # shellcheck disable=SC2086  # one file a word; docker/ca/ names have no spaces
        cat "$roots" $extra >"$bundle"
    fi
    export PIP_CERT="$bundle"
fi

exec /opt/venv/bin/python -m pip "$@"
