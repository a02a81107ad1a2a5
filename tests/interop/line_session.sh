#!/usr/bin/env bash
# netcat or socat, with LF or CRLF line endings: sends session.jsonl to groupd over TCP and
# requires exactly session.expected back (answers end in LF whatever the requests end in).
#
#   GROUPD_HOST=127.0.0.1 GROUPD_PORT=PORT tests/interop/line_session.sh nc|socat lf|crlf
set -euo pipefail
cd "$(dirname "$0")"
tool="$1" ending="$2"

case "$tool" in
nc) echo "netcat-openbsd $(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null || nc -h 2>&1 | head -1), $ending" ;;
socat) echo "$(socat -V | sed -n 's/^socat version \([^ ]*\).*/socat \1/p'), $ending" ;;
*) echo "unknown tool $tool" >&2; exit 2 ;;
esac
[[ "$ending" == lf || "$ending" == crlf ]] || { echo "unknown line ending $ending" >&2; exit 2; }

# README "Clients": netcat and socat
host=${GROUPD_HOST:-127.0.0.1} port=${GROUPD_PORT:-7411}
nc_lf() { nc -N "$host" "$port" <session.jsonl; }
nc_crlf() { nc -N -C "$host" "$port" <session.jsonl; } # -C: each LF goes out as CRLF
socat_lf() { socat -t 10 - "TCP:$host:$port" <session.jsonl; }
socat_crlf() { socat -t 10 - "TCP:$host:$port,crlf" <session.jsonl; } # crlf: each LF goes out as CRLF
# end of snippet

answers=$(mktemp)
trap 'rm -f "$answers"' EXIT
"${tool}_$ending" >"$answers"
if ! cmp -s "$answers" session.expected; then
    echo "unexpected answers from $tool ($ending):" >&2
    diff "$answers" session.expected >&2 || true
    exit 1
fi
echo "ok: create, notification, get, update, getAll, remove, error and batch answered exactly"
