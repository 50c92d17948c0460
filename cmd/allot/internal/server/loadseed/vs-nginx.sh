#!/usr/bin/env bash
# Side-by-side load test of the SDK config endpoint against nginx serving
# the same bytes (BENCHMARKS.md, "Config serving against nginx"; issue 11,
# item 5): starts `allot serve` on loopback with a fresh SQLite file, seeds
# FLAGS flags (default 1,000), saves the gzip body Allot serves, and serves
# it from nginx on another loopback port with gzip_static and nginx's own
# ETag. Then wrk runs against both in turn, ROUNDS times (same threads,
# connections and duration), for the full gzip body (200) and for a
# matching If-None-Match (304), and prints requests/s and the ratio.
# With PLAIN=1 a second `allot serve --fast-config=false` on the same
# database (the config endpoint through net/http only) takes its turn too.
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
pport="${PLAIN_PORT:-18083}"
plain="${PLAIN:-0}"
work="$(mktemp -d)"
chmod 755 "$work"
token="allot_admin_loadtest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
go build -o "$work/allot" ./cmd/allot
ALLOT_ADMIN_TOKEN="$token" GOMAXPROCS=2 "$work/allot" serve --db "$work/load.db" --addr "127.0.0.1:$port" --log-level warn &
pid=$!
npid=""
ppid=""
cleanup() {
	if [ -n "$ppid" ]; then kill -TERM "$ppid" 2>/dev/null || true; wait "$ppid" 2>/dev/null || true; fi
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
purl="http://127.0.0.1:$pport$path?$query"
if [ "$plain" = 1 ]; then
	ALLOT_ADMIN_TOKEN="$token" GOMAXPROCS=2 "$work/allot" serve --db "$work/load.db" --addr "127.0.0.1:$pport" --log-level warn --fast-config=false &
	ppid=$!
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$pport/readyz" >/dev/null && break; sleep 0.1; done
fi

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
ratio() { awk -v a="$1" -v n="$2" 'BEGIN{printf "%.2f", a/n}'; }
sum() { awk -v x="$1" -v y="$2" 'BEGIN{print x+y}'; }
avg() { awk -v x="$1" -v r="$rounds" 'BEGIN{printf "%.1f", x/r}'; }
for kind in 200 304; do
	a_total=0; n_total=0; p_total=0; ac_total=0; nc_total=0; pc_total=0
	for r in $(seq 1 "$rounds"); do
		load="$(cut -d' ' -f1-3 /proc/loadavg)"
		if [ "$kind" = 200 ]; then
			read -r a ac < <(run "$pid" -- -H 'Accept-Encoding: gzip' "$aurl")
			read -r n nc < <(run "$nginxpids" -- -H 'Accept-Encoding: gzip' "$nurl")
			[ "$plain" = 1 ] && read -r p pc < <(run "$ppid" -- -H 'Accept-Encoding: gzip' "$purl")
		else
			read -r a ac < <(run "$pid" -- -H 'Accept-Encoding: gzip' -H "If-None-Match: $aetag" "$aurl")
			read -r n nc < <(run "$nginxpids" -- -H 'Accept-Encoding: gzip' -H "If-None-Match: $netag" "$nurl")
			[ "$plain" = 1 ] && read -r p pc < <(run "$ppid" -- -H 'Accept-Encoding: gzip' -H "If-None-Match: $aetag" "$purl")
		fi
		line="$kind round $r (load $load): allot $a/s ($ac µs CPU/request), nginx $n/s ($nc µs CPU/request), throughput ratio $(ratio "$a" "$n")"
		if [ "$plain" = 1 ]; then
			line="$line; net/http only $p/s ($pc µs CPU/request), ratio to nginx $(ratio "$p" "$n")"
			p_total="$(sum "$p_total" "$p")"; pc_total="$(sum "$pc_total" "$pc")"
		fi
		echo "$line"
		a_total="$(sum "$a_total" "$a")"; n_total="$(sum "$n_total" "$n")"
		ac_total="$(sum "$ac_total" "$ac")"; nc_total="$(sum "$nc_total" "$nc")"
	done
	line="$kind overall: allot $(avg "$a_total")/s, nginx $(avg "$n_total")/s, throughput ratio $(ratio "$a_total" "$n_total"); CPU per request allot $(avg "$ac_total") µs, nginx $(avg "$nc_total") µs, ratio nginx/allot $(ratio "$nc_total" "$ac_total")"
	[ "$plain" = 1 ] && line="$line; net/http only $(avg "$p_total")/s, ratio to nginx $(ratio "$p_total" "$n_total"), $(avg "$pc_total") µs CPU/request"
	echo "$line"
done
