"""Independent check of Penumbra's wire format with Confluent's own Python client.

Reads every record of one topic with confluent_kafka's Consumer and decodes it with
AvroDeserializer + SchemaRegistryClient pointed at the registry: if Penumbra's bytes were not
Confluent-framed Avro or the schema ids did not resolve, this fails. Prints one JSON line per
record (the decoded value) so the calling test can compare with what it produced.
Usage: decode_with_confluent.py <brokers> <registry-url> <topic> <expected-count>
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, registry, topic, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
deser = AvroDeserializer(SchemaRegistryClient({"url": registry}))
consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"py-check-{uuid.uuid4()}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.subscribe([topic])
seen = 0
deadline = time.time() + 60
try:
    while seen < expected and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise SystemExit(f"kafka error: {msg.error()}")
        value = deser(msg.value(), SerializationContext(topic, MessageField.VALUE))
        schema_id = int.from_bytes(msg.value()[1:5], "big")
        print(json.dumps({"schemaId": schema_id, "key": msg.key().decode() if msg.key() else None, "value": value}, default=str))
        seen += 1
finally:
    consumer.close()
if seen < expected:
    raise SystemExit(f"only {seen}/{expected} records decoded from {topic}")
