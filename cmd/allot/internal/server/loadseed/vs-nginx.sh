#!/usr/bin/env bash
# Side-by-side load test of the SDK config endpoint against nginx serving
# the same bytes (BENCHMARKS.md, "Config serving against nginx"; issue 11,
# item 5): starts `allot serve` on loopback with a fresh SQLite file, seeds
# FLAGS flags (default 1,000), saves the gzip body Allot serves, and serves
# it from nginx on another loopback port with gzip_static and nginx's own
# ETag. Then wrk runs against both in turn, ROUNDS times (same threads,
# connections and duration), for the full gzip body (200) and for a
# matching If-None-Match (304), and prints requests/s and the ratio.
#
# Needs nginx (the gzip_static module: nginx-light has it) and wrk:
#   apt-get install -y nginx-light wrk
# Only loopback addresses are used. Bounded: 2 x 2 x ROUNDS x DURATION.
set -euo pipefail
cd "$(dirname "$0")/../../../../.."
duration="${DURATION:-10s}"
rounds="${ROUNDS:-3}"
flags="${FLAGS:-1000}"
conns="${CONNS:-16}"
port="${PORT:-18081}"
nport="${NGINX_PORT:-18082}"
work="$(mktemp -d)"
chmod 755 "$work"
token="allot_admin_loadtest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
go build -o "$work/allot" ./cmd/allot
ALLOT_ADMIN_TOKEN="$token" GOMAXPROCS=2 "$work/allot" serve --db "$work/load.db" --addr "127.0.0.1:$port" --log-level warn &
pid=$!
npid=""
cleanup() {
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ -n "$npid" ]; then kill -QUIT "$npid" 2>/dev/null || true; wait "$npid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
key="$(go run ./cmd/allot/internal/server/loadseed -server "http://127.0.0.1:$port" -token "$token" -flags "$flags")"
path="/api/flag-config/v1/config"
query="apiKey=$key&sdkName=node-server-sdk&sdkVersion=3.10.2"
aurl="http://127.0.0.1:$port$path?$query"
nurl="http://127.0.0.1:$nport$path?$query"

# The same bytes for nginx: the gzip body Allot serves, and the identity body.
mkdir -p "$work/www${path%/*}" "$work/tmp"
curl -sf -H 'Accept-Encoding: gzip' -o "$work/www$path.gz" "$aurl"
curl -sf -o "$work/www$path" "$aurl"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/tmp;
	keepalive_requests 100000000;
	keepalive_timeout 120s;
	server {
		listen 127.0.0.1:$nport;
		root $work/www;
		location = $path {
			default_type "application/json; charset=utf-8";
			gzip_static on;
			gzip_vary on;
			add_header Cache-Control "public, max-age=5, stale-while-revalidate=60, stale-if-error=86400";
		}
	}
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
npid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "$nurl" && break; sleep 0.1; done

etag() { curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip' "$1" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}'; }
aetag="$(etag "$aurl")"
netag="$(etag "$nurl")"
asize="$(curl -s -H 'Accept-Encoding: gzip' "$aurl" | wc -c)"
nsize="$(curl -s -H 'Accept-Encoding: gzip' "$nurl" | wc -c)"
echo "gzip body: allot $asize bytes, nginx $nsize bytes; ETag allot $aetag, nginx $netag"
[ "$asize" = "$nsize" ] || { echo "the bodies differ" >&2; exit 1; }

# cpu PID... prints the CPU time (user + system, clock ticks) the processes
# used so far: requests/s on a shared machine swing with the other jobs,
# CPU time per request much less.
cpu() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
tck="$(getconf CLK_TCK)"
nginxpids="$npid $(pgrep -P "$npid" | tr '\n' ' ')"
# run PIDS -- wrk args: prints "requests/s µs-CPU-per-request".
run() {
	local pids="$1"; shift; shift
	local c0 c1 out
	c0="$(cpu $pids)"
	out="$(wrk -t1 -c"$conns" -d"$duration" "$@")"
	c1="$(cpu $pids)"
	echo "$out" | awk -v c="$((c1 - c0))" -v t="$tck" '/requests in/{n=$1} /^Requests\/sec:/{r=$2} END {printf "%s %.1f\n", r, c / t * 1e6 / n}'
}
for kind in 200 304; do
	a_total=0; n_total=0; ac_total=0; nc_total=0
	for r in $(seq 1 "$rounds"); do
		if [ "$kind" = 200 ]; then
			read -r a ac < <(run "$pid" -- -H 'Accept-Encoding: gzip' "$aurl")
			read -r n nc < <(run "$nginxpids" -- -H 'Accept-Encoding: gzip' "$nurl")
		else
			read -r a ac < <(run "$pid" -- -H 'Accept-Encoding: gzip' -H "If-None-Match: $aetag" "$aurl")
			read -r n nc < <(run "$nginxpids" -- -H 'Accept-Encoding: gzip' -H "If-None-Match: $netag" "$nurl")
		fi
		echo "$kind round $r: allot $a/s ($ac µs CPU/request), nginx $n/s ($nc µs CPU/request), throughput ratio $(awk -v a="$a" -v n="$n" 'BEGIN{printf "%.2f", a/n}')"
		a_total="$(awk -v x="$a_total" -v y="$a" 'BEGIN{print x+y}')"
		n_total="$(awk -v x="$n_total" -v y="$n" 'BEGIN{print x+y}')"
		ac_total="$(awk -v x="$ac_total" -v y="$ac" 'BEGIN{print x+y}')"
		nc_total="$(awk -v x="$nc_total" -v y="$nc" 'BEGIN{print x+y}')"
	done
	echo "$kind overall: allot $(awk -v x="$a_total" -v r="$rounds" 'BEGIN{printf "%.0f", x/r}')/s, nginx $(awk -v x="$n_total" -v r="$rounds" 'BEGIN{printf "%.0f", x/r}')/s, throughput ratio $(awk -v a="$a_total" -v n="$n_total" 'BEGIN{printf "%.2f", a/n}'); CPU per request allot $(awk -v x="$ac_total" -v r="$rounds" 'BEGIN{printf "%.1f", x/r}') µs, nginx $(awk -v x="$nc_total" -v r="$rounds" 'BEGIN{printf "%.1f", x/r}') µs, ratio nginx/allot $(awk -v a="$ac_total" -v n="$nc_total" 'BEGIN{printf "%.2f", n/a}')"
done
