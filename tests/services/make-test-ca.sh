#!/usr/bin/env bash
# make-test-ca.sh DIR - make the throw-away certificates that the TLS tests of service-outbox use.
#
# The harness (services.sh up) runs it once into its state dir; tests find DIR through
# OUTBOX_TEST_TLS_DIR in services.env. Everything is made with openssl, nothing is ever
# trusted outside the tests. Files (PEM; keys are unencrypted PKCS#8, mode 0600):
#
#   ca.pem, ca-key.pem            the test CA (RSA 2048, 10 years)
#   server.pem, server-key.pem    signed by the CA: CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   server-bundle.pem             server.pem followed by server-key.pem (servers that want one file)
#   server-chain.pem              server.pem followed by ca.pem (Kafka's PEM keystore chain)
#   client.pem, client-key.pem    a client certificate signed by the CA (CN=outbox-test-client)
#   client-bundle.pem             client.pem followed by client-key.pem
#   other-ca.pem, other-ca-key.pem  an unrelated CA, for "wrong CA" tests
#   expired.pem, expired-key.pem  a server certificate signed by the CA, same names as server.pem,
#                                 valid 2020-01-01 .. 2020-01-02 only (already expired)
#   expired-bundle.pem            expired.pem followed by expired-key.pem
#
# OpenSSL 3.0's `x509 -days` cannot go back in time (-not_before/-not_after came in 3.4), so the
# expired certificate is issued with `openssl ca -startdate/-enddate` from a throw-away CA
# database. The script is idempotent: an existing, complete DIR (marker file .complete whose
# content is this script's version) is left alone; otherwise DIR is remade from scratch.
set -euo pipefail

VERSION=1 # bump when the set of files or their contents change

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1

if [ -f "$DIR/.complete" ] && [ "$(cat "$DIR/.complete")" = "$VERSION" ]; then
    exit 0
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
WORK=$(mktemp -d "$DIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
umask 077
cd "$WORK"

genkey() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# self_signed_ca NAME CN
self_signed_ca() {
    genkey "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -sha256 -days 3650 -subj "/O=service-outbox tests/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$1.pem"
}

self_signed_ca ca "service-outbox test CA"
self_signed_ca other-ca "unrelated test CA"

cat >ext-server.cnf <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
cat >ext-client.cnf <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF

# signed NAME CN EXTFILE: a key and a CA-signed certificate valid for 10 years
signed() {
    genkey "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/O=service-outbox tests/CN=$2" -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 \
        -days 3650 -extfile "$3" -out "$1.pem" 2>/dev/null
}

signed server localhost ext-server.cnf
signed client outbox-test-client ext-client.cnf

# The expired server certificate, through `openssl ca` and a throw-away database.
genkey expired-key.pem
openssl req -new -key expired-key.pem -subj "/O=service-outbox tests/CN=localhost" -out expired.csr
mkdir db
: >db/index.txt
echo 1000 >db/serial
cat >ca.cnf <<EOF
[ ca ]
default_ca = test
[ test ]
dir = $WORK/db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $WORK/ca.pem
private_key = $WORK/ca-key.pem
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
organizationName = optional
commonName = supplied
EOF
openssl ca -batch -notext -config ca.cnf -startdate 20200101000000Z -enddate 20200102000000Z \
    -extfile ext-server.cnf -in expired.csr -out expired.pem 2>/dev/null

cat server.pem server-key.pem >server-bundle.pem
cat server.pem ca.pem >server-chain.pem
cat client.pem client-key.pem >client-bundle.pem
cat expired.pem expired-key.pem >expired-bundle.pem

# Sanity: the good certificates verify, the expired one fails for being expired.
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
if openssl verify -CAfile ca.pem expired.pem >/dev/null 2>&1; then
    echo "make-test-ca.sh: expired.pem verifies, it should not" >&2
    exit 1
fi

# Certificates are public; keys stay 0600. Servers started by the same user read them all.
chmod 0644 ca.pem other-ca.pem server.pem server-chain.pem client.pem expired.pem
for f in ca.pem ca-key.pem other-ca.pem other-ca-key.pem server.pem server-key.pem \
    server-bundle.pem server-chain.pem client.pem client-key.pem client-bundle.pem \
    expired.pem expired-key.pem expired-bundle.pem; do
    mv -f "$f" "$DIR/$f"
done
echo "$VERSION" >"$DIR/.complete"
