#!/usr/bin/python3
"""check_confluent_group.py BOOTSTRAP TOPIC

confluent-kafka (librdkafka) consumer-group check:

1. create TOPIC with 4 partitions (AdminClient) and produce 400 numbered
   records, key "key-NNN", placed by librdkafka's key partitioner, with an
   idempotent producer (enable.idempotence=true, acks=all); the delivery
   reports give each record's partition and offset;
2. run two Consumer objects of one fresh group, each polled from its own
   thread, with partition.assignment.strategy=cooperative-sticky and
   at-least-once commits (enable.auto.offset.store=false, store_offsets()
   after a record is processed, auto commit); on_assign / on_revoke /
   on_lost keep a shared partition -> member table, and it is a failure
   when a partition is assigned to one member while the other still holds
   it, or when a member gets a record of a partition it does not hold.
   Until both members hold partitions, each one sleeps 20 ms per record, so
   that the first member to join cannot drain the topic alone while the
   group rebalances (with group.initial.rebalance.delay.ms=0 the first join
   completes before the second member arrives). They stop when the union
   of what they consumed covers all 400 records, all 4 partitions are
   assigned and nothing arrived for 1 s; each member must have processed
   at least one record; duplicates are allowed and counted;
3. close both (close() commits the stored offsets and leaves the group);
4. a third consumer joins the same group: once it holds all 4 partitions
   its committed offsets must be the end of each partition and it must get
   no record for 3 s; then 10 more records are produced and it must get
   exactly those.

Every record read is compared byte for byte (key and value) with what was
sent, at the partition and offset the delivery report gave.

Prints one line, "PASS confluent-group N records (...)" or
"FAIL confluent-group reason". Run it with /usr/bin/python3: Debian's
python3-confluent-kafka is installed there, not in other interpreters on PATH.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep scripts/clients free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xlang  # noqa: E402

CLIENT = "confluent-group"
DEADLINE = 45  # seconds for the whole check; run.sh kills it at 60
NPARTS = 4
NRECS = 400  # consumed by the two members
NEXTRA = 10  # produced for the third consumer
THROTTLE = 0.02  # seconds per record until the group has split
QUIET = 1.0  # members stop after this long without a record
IDLE = 3.0  # the third consumer must get nothing for this long


def key_of(i):
    return b"key-%03d" % i


def value_of(i):
    # Printable number, then bytes that cover 0x00 and 0xff across records.
    return b"record %03d " % i + bytes((i * 31 + j * 7) & 0xFF for j in range(24))


class Check:
    """State shared by the main thread and the two member threads."""

    def __init__(self, topic):
        self.topic = topic
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.placed = {}  # (partition, offset) -> record number, from delivery reports
        self.ends = {p: 0 for p in range(NPARTS)}  # end offset per partition
        self.owner = {}  # partition -> name of the member holding it
        self.problems = []
        self.split = threading.Event()  # both members have held partitions at once
        self.stop = threading.Event()

    def left(self):
        return DEADLINE - (time.monotonic() - self.start)

    def problem(self, msg):
        with self.lock:
            self.problems.append(msg)
        print("problem: " + msg, file=sys.stderr, flush=True)

    def verify(self, who, m):
        """Compares a consumed message with what was produced at its
        partition and offset; returns the record number (None if unknown)."""
        p, o = m.partition(), m.offset()
        i = self.placed.get((p, o))
        if i is None:
            self.problem("%s got partition %d offset %d, which the check did not produce" % (who, p, o))
            return None
        for what, want, got in (("key", key_of(i), m.key()), ("value", value_of(i), m.value())):
            if want != got:
                self.problem("%s: partition %d offset %d (record %d) %s: want %r, got %r" % (
                    who, p, o, i, what, want, got))
        return i


class Member:
    """One consumer of the group, polled from its own thread."""

    def __init__(self, check, name, conf):
        from confluent_kafka import Consumer
        self.check = check
        self.name = name
        self.held = set()  # partitions assigned now
        self.ever = set()  # partitions ever assigned
        self.seen = {}  # record number -> times processed
        self.last_record = None  # monotonic time of the last record
        self.consumer = Consumer(dict(conf, **{"client.id": name}))
        self.thread = None
        self.closed = False

    # Rebalance callbacks run inside poll()/close() of this member's thread.
    def on_assign(self, consumer, parts):
        c = self.check
        with c.lock:
            for tp in parts:
                other = c.owner.get(tp.partition)
                if other is not None and other != self.name:
                    c.problems.append("partition %d assigned to %s while %s still holds it" % (
                        tp.partition, self.name, other))
                c.owner[tp.partition] = self.name
                self.held.add(tp.partition)
                self.ever.add(tp.partition)
            held = [m.held for m in c.members]
            if all(held):
                c.split.set()
        print("%s assigned %s, now holds %s" % (self.name, sorted(tp.partition for tp in parts),
                                                sorted(self.held)), file=sys.stderr, flush=True)

    def on_revoke(self, consumer, parts, how="revoked"):
        c = self.check
        with c.lock:
            for tp in parts:
                if c.owner.get(tp.partition) == self.name:
                    del c.owner[tp.partition]
                self.held.discard(tp.partition)
        print("%s %s %s, now holds %s" % (self.name, how, sorted(tp.partition for tp in parts),
                                          sorted(self.held)), file=sys.stderr, flush=True)

    def on_lost(self, consumer, parts):
        self.on_revoke(consumer, parts, "lost")

    def run(self):
        from confluent_kafka import KafkaException
        c = self.check
        try:
            self.consumer.subscribe([c.topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                                    on_lost=self.on_lost)
            while not c.stop.is_set():
                m = self.consumer.poll(0.1)
                if m is None:
                    continue
                if m.error():
                    if m.error().fatal():
                        c.problem("%s: fatal consumer error: %s" % (self.name, m.error()))
                        return
                    print("%s: consumer error: %s" % (self.name, m.error()), file=sys.stderr, flush=True)
                    continue
                with c.lock:
                    if m.partition() not in self.held:
                        c.problems.append("%s got partition %d offset %d while not holding the partition "
                                          "(holds %s)" % (self.name, m.partition(), m.offset(), sorted(self.held)))
                i = c.verify(self.name, m)
                if i is not None:
                    with c.lock:
                        self.seen[i] = self.seen.get(i, 0) + 1
                        self.last_record = time.monotonic()
                try:
                    self.consumer.store_offsets(message=m)  # processed: commit it
                except KafkaException as e:
                    print("%s: store_offsets: %s" % (self.name, e), file=sys.stderr, flush=True)
                if not c.split.is_set():
                    time.sleep(THROTTLE)
        except Exception as e:  # noqa: BLE001
            c.problem("%s: %s: %s" % (self.name, type(e).__name__, e))
        finally:
            try:
                self.consumer.close()  # commits the stored offsets, leaves the group
                self.closed = True
            except Exception as e:  # noqa: BLE001
                c.problem("%s: close: %s: %s" % (self.name, type(e).__name__, e))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    ck = xlang.ConfluentCheck(bootstrap)  # Failed if confluent_kafka is missing
    from confluent_kafka import Consumer, Producer, TopicPartition

    c = Check(topic)

    def fail(reason):
        raise xlang.Failed(ck.explain(reason))

    # 1. Topic and 400 records.
    ck.create_topic(topic, NPARTS, c.start + DEADLINE / 2)
    producer = Producer(dict(ck.conf, **{
        "client.id": "xlang-confluent-group",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 20000,
    }))
    errors = []

    def produce(numbers):
        def on_delivery(err, msg):
            if err is not None:
                errors.append("record %s: %s" % (msg.key(), err))
                return
            i = int(msg.key()[4:])
            with c.lock:
                c.placed[(msg.partition(), msg.offset())] = i
                c.ends[msg.partition()] = max(c.ends[msg.partition()], msg.offset() + 1)

        for i in numbers:
            producer.produce(topic, key=key_of(i), value=value_of(i), on_delivery=on_delivery)
        left = producer.flush(20)
        if left:
            fail("%d records not delivered after 20s" % left)
        if errors:
            fail("delivery failed: %s" % errors[0])

    produce(range(NRECS))
    if len(c.placed) != NRECS or sum(c.ends.values()) != NRECS:
        fail("delivery reports name %d distinct offsets, end offsets %s, want %d records" % (
            len(c.placed), c.ends, NRECS))
    if not all(c.ends.values()):
        fail("the keys did not spread over all %d partitions: end offsets %s" % (NPARTS, c.ends))
    print("produced %d records, end offsets %s" % (NRECS, c.ends), file=sys.stderr, flush=True)

    # 2. Two members of one fresh group.
    group = "xlang-confluent-group-%d-%d" % (os.getpid(), int(time.time()))
    conf = dict(ck.conf, **{
        "group.id": group,
        "partition.assignment.strategy": "cooperative-sticky",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 30000,
        "fetch.wait.max.ms": 100,
    })
    members = [Member(c, "member-1", conf), Member(c, "member-2", conf)]
    c.members = members
    for m in members:
        m.thread = threading.Thread(target=m.run, name=m.name, daemon=True)
        m.thread.start()

    def covered():
        with c.lock:
            return len(set().union(*(m.seen for m in members)))

    while True:
        with c.lock:
            n = len(set().union(*(m.seen for m in members)))
            assigned = sorted(c.owner)
            lasts = [m.last_record for m in members if m.last_record is not None]
        quiet = lasts and time.monotonic() - max(lasts) >= QUIET
        if n == NRECS and assigned == list(range(NPARTS)) and quiet:
            break
        if c.problems or not all(m.thread.is_alive() for m in members):
            break
        if c.left() < 20:  # leave time for closing and the third consumer
            c.stop.set()
            fail("the two members consumed %d of %d records, assigned partitions %s (%s)" % (
                n, NRECS, assigned, "; ".join("%s holds %s" % (m.name, sorted(m.held)) for m in members)))
        time.sleep(0.05)

    # 3. Close both members (each closes in its own thread).
    c.stop.set()
    for m in members:
        m.thread.join(max(c.left() - 15, 1))
        if m.thread.is_alive():
            fail("%s did not close within the time left" % m.name)
    if c.problems:
        raise xlang.Failed(c.problems[0] + ("" if len(c.problems) == 1 else " (+%d more)" % (len(c.problems) - 1)))
    if covered() != NRECS:
        fail("the members stopped after %d of %d records" % (covered(), NRECS))
    for m in members:
        if not m.ever or not m.seen:
            fail("%s got partitions %s and %d records: the group did not split the work "
                 "(other member: partitions %s)" % (m.name, sorted(m.ever), len(m.seen),
                                                    sorted(next(x for x in members if x is not m).ever)))
    processed = sum(sum(m.seen.values()) for m in members)
    dups = processed - NRECS
    split_note = ", ".join("%s %d records from partitions %s" % (
        m.name, sum(m.seen.values()), ",".join(str(p) for p in sorted(m.ever))) for m in members)
    print("members done: %s; %d duplicates" % (split_note, dups), file=sys.stderr, flush=True)

    # 4. A third consumer: nothing left, then exactly the 10 new records.
    third = Consumer(dict(conf, **{"client.id": "member-3"}))
    held = set()

    def on_assign(consumer, parts):
        held.update(tp.partition for tp in parts)
        print("member-3 assigned %s" % sorted(tp.partition for tp in parts), file=sys.stderr, flush=True)

    def on_revoke(consumer, parts):
        held.difference_update(tp.partition for tp in parts)

    got = []  # (record number, partition, offset)
    stale = []

    def take(m):
        if m is None:
            return
        if m.error():
            if m.error().fatal():
                fail("member-3: fatal consumer error: %s" % m.error())
            print("member-3: consumer error: %s" % m.error(), file=sys.stderr, flush=True)
            return
        i = c.verify("member-3", m)
        if c.problems:
            raise xlang.Failed(c.problems[0])
        (stale if i is not None and i < NRECS else got).append((i, m.partition(), m.offset()))
        third.store_offsets(message=m)

    try:
        third.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        while len(held) < NPARTS:
            if c.left() < 8:
                fail("member-3 holds partitions %s, not all %d, %.0fs into the check" % (
                    sorted(held), NPARTS, DEADLINE - c.left()))
            take(third.poll(0.1))
        committed = third.committed([TopicPartition(topic, p) for p in range(NPARTS)], timeout=10)
        wrong = ["partition %d at %d, end %d" % (tp.partition, tp.offset, c.ends[tp.partition])
                 for tp in committed if tp.offset != c.ends[tp.partition]]
        if wrong:
            fail("after both members closed, the group's committed offsets are not the end: %s" % "; ".join(wrong))
        until = time.monotonic() + IDLE
        while time.monotonic() < until:
            take(third.poll(0.1))
        if stale or got:
            r = (stale + got)[0]
            fail("member-3 got %d records already processed by the group, the first partition %d offset %d "
                 "(record %s)" % (len(stale) + len(got), r[1], r[2], r[0]))

        produce(range(NRECS, NRECS + NEXTRA))
        want = {(p, o): i for (p, o), i in c.placed.items() if i >= NRECS}
        while len(got) < NEXTRA and c.left() > 1.5:
            take(third.poll(0.1))
        until = min(time.monotonic() + 1.0, time.monotonic() + c.left() - 0.5)
        while time.monotonic() < until:  # anything beyond the 10 new records
            take(third.poll(0.1))
    finally:
        third.close()
    have = {(p, o): i for i, p, o in got}
    if stale or have != want or len(got) != NEXTRA:
        fail("member-3 got %d records after the 10 new ones were produced (%d of them new, %d old), want "
             "exactly the 10 new ones %s" % (len(got) + len(stale), len(have.keys() & want.keys()), len(stale),
                                             sorted(want)))
    return xlang.result_line(CLIENT, NRECS + NEXTRA, [], "%s; %d duplicates; member-3 got only the %d new" % (
        split_note, dups, NEXTRA))


if __name__ == "__main__":
    xlang.run_check(CLIENT, main)
