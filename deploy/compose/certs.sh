#!/bin/sh
# The compose cluster's one-shot `certs` service: a cluster CA and the certificates of
# member-1..3, data-node-1..3 and the client `admin` (subject tls:admin), made once by
# `tribctl certs init` into the `ca` volume, which only this service mounts. Each certificate
# names its holder (member-N, data-node-N: the service names) besides localhost and 127.0.0.1.
# The servers' volume `pki` gets everything but the CA key; ./client (on the host) gets what
# tribctl needs: ca.pem, admin.pem, admin-key.pem.
set -eu
ca=/etc/tributary/ca
pki=/etc/tributary/pki
client=/etc/tributary/client
if [ ! -f "$ca/ca.pem" ]; then
  tribctl certs init --dir "$ca" --members 3 --data-nodes 3 --client admin \
    ${TRIBUTARY_CERT_HOSTS:+--host "$TRIBUTARY_CERT_HOSTS"}
fi
for f in "$ca"/*.pem; do
  case "$f" in */ca-key.pem) ;; *) cp "$f" "$pki/" ;; esac
done
chown -R 10001:10001 "$pki"
cp "$ca/ca.pem" "$ca/admin.pem" "$ca/admin-key.pem" "$client/"
chown "${TRIBUTARY_CLIENT_OWNER:-0:0}" "$client"/*.pem
echo "certificates in the pki volume; tribctl's in ./client (TRIBUTARY_CA, TRIBUTARY_CERT, TRIBUTARY_KEY)"
