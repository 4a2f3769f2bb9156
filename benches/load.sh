#!/usr/bin/env bash
# Load test: discovery, JWKS, client_credentials (RS256 and ES256), introspection and
# userinfo at 32 connections with wrk, on the release build with production argon2
# parameters. Prints requests/s, p50 and p99 per endpoint and the server's RSS.
# Usage: bash benches/load.sh [duration, default 15s]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-15s}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/klard-target}"
cargo build --release --bin klard-auth
bin="$CARGO_TARGET_DIR/release/klard-auth"
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cat > "$work/klard.toml" <<TOML
issuer = "$base"
bind = "127.0.0.1:$port"
data_dir = "$work/data"
database_url = "${BENCH_DATABASE_URL:-sqlite://$work/data/klard.db?mode=rwc}"
[[clients]]
client_id = "bench-rs"
client_secret = "bench-rs-secret-0123456789abcdef"
grant_types = ["client_credentials"]
scope = "api.read"
[[clients]]
client_id = "bench-es"
client_secret = "bench-es-secret-0123456789abcdef"
grant_types = ["client_credentials"]
scope = "api.read"
access_token_signed_response_alg = "ES256"
[[clients]]
client_id = "bench-web"
client_secret = "bench-web-secret-0123456789abcdef"
redirect_uris = ["http://127.0.0.1:9/cb"]
first_party = true
TOML
export KLARD_CONFIG="$work/klard.toml" RUST_LOG=warn
"$bin" migrate >/dev/null
"$bin" user create --email bench@example.com --password bench-password-123 --name Bench >/dev/null
"$bin" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do curl -sf "$base/health" >/dev/null && break; sleep 0.5; done

# A user access token through the real login form (python3 stdlib only).
user_token=$(python3 - "$base" <<'PY'
import sys, re, urllib.request, urllib.parse, http.cookiejar, json, base64, hashlib, os
base = sys.argv[1]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
class LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    # Browsers treat http://127.0.0.1 as a secure context and send Secure cookies there.
    def return_ok_secure(self, cookie, request): return True
jar = http.cookiejar.CookieJar(policy=LoopbackIsSecure())
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def get(url):
    try: return op.open(url)
    except urllib.error.HTTPError as e: return e
v = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
c = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
q = urllib.parse.urlencode({"response_type": "code", "client_id": "bench-web", "redirect_uri": "http://127.0.0.1:9/cb",
    "scope": "openid profile email", "state": "s", "code_challenge": c, "code_challenge_method": "S256"})
r = get(f"{base}/authorize?{q}")
login = urllib.parse.urljoin(base, r.headers["Location"])
html = get(login).read().decode()
fields = dict(re.findall(r'name="(interaction|csrf_token)" value="([^"]*)"', html))
fields.update(username="bench@example.com", password="bench-password-123")
req = urllib.request.Request(f"{base}/login", data=urllib.parse.urlencode(fields).encode())
try: r = op.open(req)
except urllib.error.HTTPError as e: r = e
r = get(urllib.parse.urljoin(base, r.headers["Location"]))
loc = r.headers["Location"]
qs = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
if "code" not in qs: sys.exit(f"no code in {loc}")
code = qs["code"][0]
body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": v}).encode()
req = urllib.request.Request(f"{base}/token", data=body)
req.add_header("Authorization", "Basic " + base64.b64encode(b"bench-web:bench-web-secret-0123456789abcdef").decode())
print(json.loads(op.open(req).read())["access_token"])
PY
)
cc_token=$(curl -s -u bench-rs:bench-rs-secret-0123456789abcdef -d grant_type=client_credentials "$base/token" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')

post_lua() { # $1 = body, $2 = basic credentials
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "$1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "$2" | base64 -w0)"
LUA
}

run() { # name, wrk args...
  local name=$1; shift
  local out; out=$(wrk -t2 -c32 -d"$dur" --latency "$@")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-28s | %10s | %8s | %8s | %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:+non-2xx: $non2xx}"
}

echo "| endpoint                     |      req/s |      p50 |      p99 |"
echo "|------------------------------|-----------:|---------:|---------:|"
run "discovery" "$base/.well-known/openid-configuration"
run "jwks" "$base/jwks"
post_lua "grant_type=client_credentials" "bench-rs:bench-rs-secret-0123456789abcdef"
run "client_credentials RS256" -s "$work/post.lua" "$base/token"
post_lua "grant_type=client_credentials" "bench-es:bench-es-secret-0123456789abcdef"
run "client_credentials ES256" -s "$work/post.lua" "$base/token"
post_lua "token=$cc_token" "bench-rs:bench-rs-secret-0123456789abcdef"
run "introspection" -s "$work/post.lua" "$base/introspect"
run "userinfo" -H "Authorization: Bearer $user_token" "$base/userinfo"
echo
echo "server RSS after the run: $(( $(ps -o rss= -p "$pid") / 1024 )) MiB"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
