#!/bin/sh
# The image's HEALTHCHECK: GET /health on this container's admin listener. Port from
# PROMETHEUS_PORT or TRIBUTARY_ADMIN_LISTEN (default 9095); https trusting the cluster CA
# (TRIBUTARY_TLS__CA_FILE) unless TRIBUTARY_INSECURE=true. /health is 200 while the server
# does its work (`ok`, or `degraded` naming what it owns that does not), 503 when it cannot.
listen="${TRIBUTARY_ADMIN_LISTEN:-0.0.0.0:9095}"
port="${PROMETHEUS_PORT:-${listen##*:}}"
if [ "${TRIBUTARY_INSECURE:-false}" = "true" ]; then
  exec curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port}/health"
fi
exec curl -fsS -o /dev/null --max-time 2 --cacert "${TRIBUTARY_TLS__CA_FILE:-/etc/tributary/pki/ca.pem}" \
  "https://localhost:${port}/health"
