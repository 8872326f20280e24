#!/usr/bin/python3
"""check_confluent.py BOOTSTRAP TOPIC

confluent-kafka (librdkafka) round trip of records.json: create the topic
with AdminClient, produce every record with an idempotent producer
(enable.idempotence=true, acks=all), consume the topic from the beginning
with manually assigned partitions until end of partition, compare byte for
byte per partition in offset order, headers included.

Prints one line, "PASS confluent-kafka N records" or
"FAIL confluent-kafka reason". Run it with /usr/bin/python3: Debian's
python3-confluent-kafka is installed there, not in other interpreters on PATH.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xlang  # noqa: E402

CLIENT = "confluent-kafka"
DEADLINE = 50  # seconds; run.sh kills the check at 60


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    start = time.monotonic()
    try:
        import confluent_kafka
        from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError as e:
        return xlang.result_line(CLIENT, 0, ["cannot import confluent_kafka (python3-confluent-kafka): %s" % e])
    print("confluent-kafka %s, librdkafka %s" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]),
          file=sys.stderr)

    nparts, recs = xlang.load_records()
    common = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}

    admin = AdminClient(dict(common))
    fut = admin.create_topics([NewTopic(topic, num_partitions=nparts, replication_factor=1)],
                              operation_timeout=15, request_timeout=15)
    try:
        fut[topic].result(timeout=20)
    except Exception as e:  # noqa: BLE001
        return xlang.result_line(CLIENT, 0, ["create topic %s: %s" % (topic, e)])
    # Wait until metadata shows every partition with a leader (bounded).
    while True:
        md = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) >= nparts and \
                all(p.leader >= 0 for p in md.partitions.values()):
            break
        if time.monotonic() - start > DEADLINE / 2:
            return xlang.result_line(CLIENT, 0, ["topic %s not ready: %r" % (topic, md and md.error)])
        time.sleep(0.2)

    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s [%s]: %s" % (msg.topic(), msg.partition(), err))

    producer = Producer(dict(common, **{
        "client.id": "xlang-confluent",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 0,
        "message.timeout.ms": 30000,
    }))
    for r in recs:
        kw = {"partition": r["partition"], "on_delivery": on_delivery}
        if r["headers"]:
            kw["headers"] = list(r["headers"])
        producer.produce(topic, value=r["value"], key=r["key"], **kw)
    left = producer.flush(35)
    if left:
        return xlang.result_line(CLIENT, 0, ["%d records not delivered after 35s" % left])
    if errors:
        return xlang.result_line(CLIENT, 0, ["delivery failed: %s" % errors[0]])

    consumer = Consumer(dict(common, **{
        "client.id": "xlang-confluent",
        "group.id": "xlang-confluent-%d-%d" % (os.getpid(), int(time.time())),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(nparts)])
    got = {p: [] for p in range(nparts)}
    eof = set()
    try:
        while len(eof) < nparts:
            if time.monotonic() - start > DEADLINE:
                return xlang.result_line(CLIENT, 0, ["consume timed out; partitions at end: %s" % sorted(eof)])
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                return xlang.result_line(CLIENT, 0, ["consume: %s" % m.error()])
            got[m.partition()].append((m.key(), m.value(), list(m.headers() or [])))
    finally:
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
