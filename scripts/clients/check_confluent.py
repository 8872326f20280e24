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

import logging
import os
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/clients free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xlang  # noqa: E402

CLIENT = "confluent-kafka"
DEADLINE = 50  # seconds; run.sh kills the check at 60


class LastError(logging.Handler):
    """Passes librdkafka's log lines to stderr and keeps the last warning or
    error, so a FAIL line can say what librdkafka complained about."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.last = None

    def emit(self, record):
        msg = record.getMessage()
        print("librdkafka %s %s" % (record.levelname, msg), file=sys.stderr)
        if record.levelno >= logging.WARNING:
            self.last = msg


def with_last_error(reason, handler):
    return reason + ("; last librdkafka error: %s" % handler.last if handler.last else "")


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
    last = LastError()
    log = logging.getLogger("librdkafka")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(last)
    common = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "logger": log}

    admin = AdminClient(dict(common))
    fut = admin.create_topics([NewTopic(topic, num_partitions=nparts, replication_factor=1)],
                              operation_timeout=15, request_timeout=15)
    try:
        fut[topic].result(timeout=20)
    except Exception as e:  # noqa: BLE001
        return xlang.result_line(CLIENT, 0, [with_last_error("create topic %s: %s" % (topic, e), last)])
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
        return xlang.result_line(CLIENT, 0, [with_last_error("%d records not delivered after 35s" % left, last)])
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
    all_read_at = None  # when the last expected record arrived
    try:
        while len(eof) < nparts:
            n = sum(len(v) for v in got.values())
            if n >= len(recs) and all_read_at is None:
                all_read_at = time.monotonic()
            late = all_read_at is not None and time.monotonic() - all_read_at > 10
            if late or time.monotonic() - start > DEADLINE:
                return xlang.result_line(CLIENT, 0, [with_last_error(
                    "consume did not reach the end of every partition within %s after %d of %d records "
                    "(partitions at end: %s)" % ("10s of the last record" if late else "%ds" % DEADLINE,
                                                 n, len(recs), sorted(eof)), last)])
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                return xlang.result_line(CLIENT, 0, [with_last_error("consume: %s" % m.error(), last)])
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
