#!/bin/bash
# One-shot: the app's SCRAM user and its ACLs (every operation on the topics and on the
# consumer groups whose names start with the app id; nothing else), created as the admin.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${SALESPULSE_KAFKA_PASSWORD:?set SALESPULSE_KAFKA_PASSWORD}"
user="${SALESPULSE_KAFKA_USERNAME:-salespulse}"
app="${SALESPULSE_APP_ID:-salespulse}"
umask 077
admin=/tmp/admin.properties
cat > "$admin" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="salespulse-admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPS
bin=/opt/kafka/bin
"$bin/kafka-configs.sh" --bootstrap-server kafka:9092 --command-config "$admin" --alter \
  --entity-type users --entity-name "$user" --add-config "SCRAM-SHA-512=[password=${SALESPULSE_KAFKA_PASSWORD}]"
"$bin/kafka-acls.sh" --bootstrap-server kafka:9092 --command-config "$admin" --add \
  --allow-principal "User:$user" --operation All --topic '*'
"$bin/kafka-acls.sh" --bootstrap-server kafka:9092 --command-config "$admin" --add \
  --allow-principal "User:$user" --operation All --group "$app" --resource-pattern-type prefixed
echo "kafka-init: user $user and its ACLs are in place"
