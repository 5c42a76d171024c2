#!/bin/bash
# The compose broker: its admin SCRAM user must exist before the first start (KRaft keeps
# users in its metadata log), so storage is formatted here with it, then the broker runs.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${CLUSTER_ID:?set CLUSTER_ID}"
umask 077
conf=/tmp/server.properties
sed "s|@ADMIN_PASSWORD@|${KAFKA_ADMIN_PASSWORD}|" /deploy/kafka/server.properties > "$conf"
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --standalone -t "$CLUSTER_ID" -c "$conf" \
    --add-scram "SCRAM-SHA-512=[name=salespulse-admin,password=${KAFKA_ADMIN_PASSWORD}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
