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

sys.dont_write_bytecode = True  # keep scripts/clients free of __pycache__
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
    ck = xlang.ConfluentCheck(bootstrap)  # Failed if confluent_kafka is missing
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING

    nparts, recs = xlang.load_records()
    ck.create_topic(topic, nparts, start + DEADLINE / 2)

    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s [%s]: %s" % (msg.topic(), msg.partition(), err))

    producer = Producer(dict(ck.conf, **{
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
        return xlang.result_line(CLIENT, 0, [ck.explain("%d records not delivered after 35s" % left)])
    if errors:
        return xlang.result_line(CLIENT, 0, ["delivery failed: %s" % errors[0]])

    consumer = Consumer(dict(ck.conf, **{
        "client.id": "xlang-confluent",
        "group.id": "xlang-confluent-%d-%d" % (os.getpid(), int(time.time())),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(nparts)])
    got = {p: [] for p in range(nparts)}
    eof = set()
    all_read_at = None  # when the last expected record arrived
    try:
        while len(eof) < nparts:
            n = sum(len(v) for v in got.values())
            if n >= len(recs) and all_read_at is None:
                all_read_at = time.monotonic()
            late = all_read_at is not None and time.monotonic() - all_read_at > 10
            if late or time.monotonic() - start > DEADLINE:
                return xlang.result_line(CLIENT, 0, [ck.explain(
                    "consume did not reach the end of every partition within %s after %d of %d records "
                    "(partitions at end: %s)" % ("10s of the last record" if late else "%ds" % DEADLINE,
                                                 n, len(recs), sorted(eof)))])
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                return xlang.result_line(CLIENT, 0, [ck.explain("consume: %s" % m.error())])
            got[m.partition()].append((m.key(), m.value(), list(m.headers() or [])))
    finally:
        consumer.close()

    problems = xlang.compare(xlang.expected_by_partition(recs), got)
    return xlang.result_line(CLIENT, len(recs), problems)


if __name__ == "__main__":
    xlang.run_check(CLIENT, main)
