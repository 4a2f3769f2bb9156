#!/usr/bin/env bash
# Runs the conformance harness against a throwaway klard-auth:
# https on 127.0.0.1 with a fresh self-signed certificate, SQLite in a temp
# dir, one fully populated test user, the three static clients the Basic OP
# plan needs, and `klard-auth keys rotate` as the rotate hook.
#
#   conformance/run.sh                 # every module
#   conformance/run.sh --only oidcc-server -v
#
# Env: CARGO_TARGET_DIR (default ./target), KLARD_CONFORMANCE_PORT (default 18443),
#      KLARD_CONFORMANCE_NO_BUILD=1 to skip `cargo build`.
# Exit code: the harness's (0 iff no module failed); 2 if the setup failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${KLARD_CONFORMANCE_PORT:-18443}
BIN=$TARGET/debug

if [ "${KLARD_CONFORMANCE_NO_BUILD:-}" != 1 ]; then
    (cd "$ROOT" && cargo build --quiet --bin klard-auth --bin conformance)
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail_setup() {
    echo "conformance/run.sh: $*" >&2
    if [ -f "$WORK/server.log" ]; then
        echo "--- server log ---" >&2
        tail -n 40 "$WORK/server.log" >&2
    fi
    exit 2
}

# rustls refuses a CA certificate as the server's own certificate, so the
# self-signed certificate must say CA:FALSE.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -addext "basicConstraints=critical,CA:FALSE" >/dev/null 2>&1 \
    || fail_setup "openssl could not make a certificate"

REDIRECT_URI=http://127.0.0.1:9/callback
SECRET_A=conformance-secret-A-$RANDOM$RANDOM
SECRET_B=conformance-secret-B-$RANDOM$RANDOM
SECRET_C=conformance-secret-C-$RANDOM$RANDOM
PASSWORD=conformance-pw-$RANDOM$RANDOM

cat >"$WORK/klard.toml" <<EOF
issuer = "https://127.0.0.1:$PORT"
bind = "127.0.0.1:$PORT"
data_dir = "$WORK/data"

[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"

[[clients]]
client_id = "conformance-basic"
client_secret = "$SECRET_A"
redirect_uris = ["$REDIRECT_URI"]
grant_types = ["authorization_code", "refresh_token"]
token_endpoint_auth_method = "client_secret_basic"

[[clients]]
client_id = "conformance-basic-2"
client_secret = "$SECRET_B"
redirect_uris = ["$REDIRECT_URI"]
grant_types = ["authorization_code", "refresh_token"]
token_endpoint_auth_method = "client_secret_basic"

[[clients]]
client_id = "conformance-post"
client_secret = "$SECRET_C"
redirect_uris = ["$REDIRECT_URI"]
grant_types = ["authorization_code", "refresh_token"]
token_endpoint_auth_method = "client_secret_post"
EOF

KLARD=("$BIN/klard-auth" --config "$WORK/klard.toml")
"${KLARD[@]}" migrate >/dev/null 2>&1 || fail_setup "klard-auth migrate failed"
# Every standard claim populated, so the scope modules raise no warnings.
cat <<EOF | "${KLARD[@]}" user create --stdin >/dev/null 2>&1 || fail_setup "klard-auth user create failed"
{"email": "alice@example.com", "password": "$PASSWORD", "email_verified": true,
 "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
 "middle_name": "Pleasance", "nickname": "Al", "preferred_username": "alice",
 "profile": "https://example.com/alice", "picture": "https://example.com/alice.png",
 "website": "https://example.com", "gender": "female", "birthdate": "1990-01-01",
 "zoneinfo": "Europe/London", "locale": "en-GB", "updated_at": 1700000000,
 "address": {"formatted": "1 Rabbit Hole, Oxford", "street_address": "1 Rabbit Hole",
             "locality": "Oxford", "postal_code": "OX1", "country": "GB"},
 "phone_number": "+44 1865 000000", "phone_number_verified": true}
EOF

"${KLARD[@]}" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
    if curl -sf --cacert "$WORK/cert.pem" \
        "https://127.0.0.1:$PORT/.well-known/openid-configuration" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || fail_setup "klard-auth serve exited"
    sleep 0.5
done
curl -sf --cacert "$WORK/cert.pem" "https://127.0.0.1:$PORT/.well-known/openid-configuration" \
    >/dev/null 2>&1 || fail_setup "klard-auth did not come up on port $PORT"

set +e
"$BIN/conformance" \
    --issuer "https://127.0.0.1:$PORT" --ca-file "$WORK/cert.pem" \
    --username alice@example.com --password "$PASSWORD" \
    --redirect-uri "$REDIRECT_URI" \
    --client-id conformance-basic --client-secret "$SECRET_A" \
    --client2-id conformance-basic-2 --client2-secret "$SECRET_B" \
    --post-client-id conformance-post --post-client-secret "$SECRET_C" \
    --rotate-keys-cmd "$BIN/klard-auth --config $WORK/klard.toml keys rotate >/dev/null" \
    "$@"
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ -n "${CI:-}" ]; then
    echo "--- server log (last 40 lines) ---" >&2
    tail -n 40 "$WORK/server.log" >&2
fi
exit "$rc"
