#!/usr/bin/python3
"""check_kafka_python.py BOOTSTRAP TOPIC

kafka-python round trip of records.json: create the topic with
KafkaAdminClient, produce every record (acks=all), consume the topic from the
beginning with manually assigned partitions (no consumer group), compare
byte for byte per partition in offset order, headers included.

Prints one line, "PASS kafka-python N records" or "FAIL kafka-python reason".
Run it with /usr/bin/python3: Debian's python3-kafka is installed there, not
in other interpreters on PATH.

kafka-python notes: api_version is left to auto-detection (it sends
ApiVersions and infers a broker version). Debian bookworm ships kafka-python
2.0.2, whose producer has no idempotence, so only acks=all with one request
in flight is used; its producer also rejects null header values.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/clients free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xlang  # noqa: E402

CLIENT = "kafka-python"
DEADLINE = 50  # seconds; run.sh kills the check at 60


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    start = time.monotonic()
    try:
        import kafka
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.admin import NewTopic
    except ImportError as e:
        return xlang.result_line(CLIENT, 0, ["cannot import kafka (python3-kafka): %s" % e])
    print("kafka-python %s" % kafka.__version__, file=sys.stderr)

    nparts, recs = xlang.load_records()
    common = dict(bootstrap_servers=bootstrap, request_timeout_ms=15000,
                  api_version_auto_timeout_ms=10000)

    admin = KafkaAdminClient(client_id="xlang-kafka-python-admin", **common)
    print("kafka-python: detected api_version %s" % (admin.config["api_version"],), file=sys.stderr)
    try:
        res = admin.create_topics([NewTopic(topic, num_partitions=nparts, replication_factor=1)],
                                  timeout_ms=15000)
        for t, code, msg in getattr(res, "topic_errors", []) or []:
            if code != 0:
                return xlang.result_line(CLIENT, 0, ["create topic %s: error %d %s" % (t, code, msg)])
    finally:
        admin.close()

    producer = KafkaProducer(client_id="xlang-kafka-python", acks="all", retries=5,
                             max_in_flight_requests_per_connection=1, linger_ms=0,
                             max_request_size=4 * 1024 * 1024, **common)
    # Wait until the new topic's partitions show up in metadata (bounded).
    while True:
        parts = producer.partitions_for(topic)
        if parts and len(parts) >= nparts:
            break
        if time.monotonic() - start > DEADLINE / 2:
            producer.close(timeout=5)
            return xlang.result_line(CLIENT, 0, ["topic %s has partitions %r, want %d" % (topic, parts, nparts)])
        time.sleep(0.2)
    futures = []
    for r in recs:
        futures.append((r, producer.send(topic, key=r["key"], value=r["value"],
                                         headers=list(r["headers"]), partition=r["partition"])))
    producer.flush(timeout=30)
    for r, f in futures:
        try:
            f.get(timeout=1)
        except Exception as e:  # noqa: BLE001 - report whatever the client raised
            producer.close(timeout=5)
            return xlang.result_line(CLIENT, 0, ["produce %s: %r" % (r["name"], e)])
    producer.close(timeout=10)

    consumer = KafkaConsumer(client_id="xlang-kafka-python", group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_bytes=8 * 1024 * 1024,
                             max_partition_fetch_bytes=4 * 1024 * 1024, **common)
    tps = [TopicPartition(topic, p) for p in range(nparts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    end = consumer.end_offsets(tps)
    got = {p: [] for p in range(nparts)}
    while any(consumer.position(tp) < end[tp] for tp in tps):
        if time.monotonic() - start > DEADLINE:
            pos = {tp.partition: (consumer.position(tp), end[tp]) for tp in tps}
            consumer.close()
            return xlang.result_line(CLIENT, 0, ["consume timed out at (position, end) %r" % pos])
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                got[tp.partition].append((m.key, m.value, [(n, v) for n, v in m.headers]))
    consumer.close()

    problems = xlang.compare(xlang.expected_by_partition(recs), got)
    return xlang.result_line(CLIENT, len(recs), problems)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - one FAIL line instead of a traceback
        import traceback
        traceback.print_exc()
        sys.exit(xlang.result_line(CLIENT, 0, ["%s: %s" % (type(e).__name__, e)]))
