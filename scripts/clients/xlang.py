"""Shared helpers for the Python-driven cross-language client checks.

Loads records.json (the one set of records every client check must produce
and read back) and compares what a client consumed with what was sent.
Standard library only, so it runs under /usr/bin/python3 as well as any
other python3.

Also what the Python checks share around that: Failed and run_check (one
verdict line whatever happens) and, for the two confluent-kafka checks,
ConfluentCheck (librdkafka's log, common settings, topic creation); it
imports confluent_kafka only when used.

And a small command line used by check_kcat.sh:

  xlang.py kcat-prepare DIR NPARTS KEYDELIM   write one input file and one
                                              argument file per record
  xlang.py kcat-verify FILE NPARTS CLIENT     parse kcat -f output and compare
"""

import base64
import json
import logging
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS_JSON = os.path.join(HERE, "records.json")


def _b(v):
    return None if v is None else base64.b64decode(v)


def load_records(path=RECORDS_JSON):
    """Returns (partitions, records); each record is a dict with name,
    partition (int), key (bytes|None), value (bytes|None) and headers
    (list of (str, bytes))."""
    with open(path, "rb") as f:
        doc = json.load(f)
    recs = []
    for r in doc["records"]:
        recs.append({
            "name": r["name"],
            "partition": int(r["partition"]),
            "key": _b(r["key"]),
            "value": _b(r["value"]),
            "headers": [(n, _b(v)) for n, v in r["headers"]],
        })
    return int(doc["partitions"]), recs


def expected_by_partition(records, nparts=None):
    """Groups records by partition, in send order. nparts maps partitions
    modulo a smaller partition count (used only where a client cannot
    create topics and an auto-created topic came out smaller)."""
    out = {}
    for r in records:
        p = r["partition"] if nparts is None else r["partition"] % nparts
        out.setdefault(p, []).append(r)
    return out


def _describe(b):
    if b is None:
        return "null"
    if len(b) <= 24:
        return "%d bytes %s" % (len(b), b.hex())
    return "%d bytes %s..." % (len(b), b[:12].hex())


def _diff_bytes(what, want, got):
    if want == got:
        return None
    if want is None or got is None:
        return "%s: want %s, got %s" % (what, _describe(want), _describe(got))
    if len(want) != len(got):
        return "%s: want %d bytes, got %d bytes" % (what, len(want), len(got))
    i = next(i for i in range(len(want)) if want[i] != got[i])
    return "%s: first difference at byte %d (want %02x, got %02x)" % (
        what, i, want[i], got[i])


def compare(expected, got, check_headers=True):
    """expected: {partition: [record]}; got: {partition: [(key, value,
    headers)]} in offset order, headers a list of (str, bytes|None).
    Returns a list of human-readable problems (empty when all match)."""
    problems = []
    for p in sorted(set(expected) | set(got)):
        want = expected.get(p, [])
        have = got.get(p, [])
        if len(want) != len(have):
            problems.append("partition %d: want %d records, got %d" % (
                p, len(want), len(have)))
        for i, (w, h) in enumerate(zip(want, have)):
            where = "partition %d record %d (%s)" % (p, i, w["name"])
            key, value, headers = h
            for what, a, b in (("key", w["key"], key), ("value", w["value"], value)):
                d = _diff_bytes(what, a, b)
                if d:
                    problems.append("%s %s" % (where, d))
            if check_headers:
                wh = [(n, v) for n, v in w["headers"]]
                hh = [(n, v) for n, v in headers]
                if wh != hh:
                    problems.append("%s headers: want %r, got %r" % (where, wh, hh))
    return problems


def result_line(client, n, problems, note=""):
    """Prints the one-line verdict and returns the exit code."""
    if problems:
        more = "" if len(problems) == 1 else " (+%d more)" % (len(problems) - 1)
        print("FAIL %s %s%s" % (client, problems[0], more), flush=True)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print("PASS %s %d records%s" % (client, n, " (%s)" % note if note else ""), flush=True)
    return 0


class Failed(Exception):
    """A check's failure; run_check prints its message as the FAIL line."""


def run_check(client, main):
    """Runs main(), a check's body, and exits with the code it returns.
    Failed, or any other exception (traceback on stderr), becomes one FAIL
    line instead of a traceback alone, so run.sh always gets a verdict."""
    try:
        code = main()
    except Failed as e:
        code = result_line(client, 0, [str(e)])
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        code = result_line(client, 0, ["%s: %s" % (type(e).__name__, e)])
    sys.exit(code)


# --- confluent-kafka support --------------------------------------------


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


class ConfluentCheck:
    """What check_confluent.py and check_confluent_group.py share: it
    imports confluent_kafka (Failed if python3-confluent-kafka is missing),
    logs its versions, and routes librdkafka's log through LastError.
    conf holds the settings every client of the check starts from."""

    def __init__(self, bootstrap):
        try:
            import confluent_kafka
        except ImportError as e:
            raise Failed("cannot import confluent_kafka (python3-confluent-kafka): %s" % e)
        print("confluent-kafka %s, librdkafka %s" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]),
              file=sys.stderr)
        self.log = LastError()
        logger = logging.getLogger("librdkafka")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(self.log)
        self.conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "logger": logger}

    def explain(self, reason):
        """reason, with the last error librdkafka logged if any."""
        return reason + ("; last librdkafka error: %s" % self.log.last if self.log.last else "")

    def create_topic(self, topic, nparts, ready_by):
        """Creates topic with nparts partitions and waits until metadata
        shows them all with a leader; Failed if that takes past ready_by
        (a time.monotonic() value)."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient(dict(self.conf))
        fut = admin.create_topics([NewTopic(topic, num_partitions=nparts, replication_factor=1)],
                                  operation_timeout=15, request_timeout=15)
        try:
            fut[topic].result(timeout=20)
        except Exception as e:  # noqa: BLE001
            raise Failed(self.explain("create topic %s: %s" % (topic, e)))
        while True:
            md = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
            if md is not None and md.error is None and len(md.partitions) >= nparts and \
                    all(p.leader >= 0 for p in md.partitions.values()):
                return
            if time.monotonic() > ready_by:
                raise Failed(self.explain("topic %s not ready: %r" % (topic, md and md.error)))
            time.sleep(0.2)


# --- kcat support -------------------------------------------------------

KCAT_FORMAT_START = b"@@WEIR-XLANG "
KCAT_FORMAT_HDR = b"\n@@HDR "
KCAT_FORMAT_END = b"\n@@END\n"
# kcat -f format: partition, offset, key length, value length (-1 = null),
# then the raw key and value bytes, then headers as name=value,...
KCAT_FORMAT = "@@WEIR-XLANG %p %o %K %S\\n%k%s\\n@@HDR %h\\n@@END\\n"


def kcat_prepare(outdir, nparts, keydelim):
    """Writes rec-NNN.msg (stdin for kcat -P -K KEYDELIM) and rec-NNN.args
    (NUL-separated extra kcat arguments) for each record."""
    _, recs = load_records()
    kd = keydelim.encode()
    for i, r in enumerate(recs):
        for what, b in (("key", r["key"]), ("value", r["value"])):
            if b is not None and kd in b:
                raise SystemExit("record %s %s contains the kcat key delimiter" % (r["name"], what))
        args = ["-p", str(r["partition"] % nparts)]
        if r["key"] is None:
            # No key delimiter in the input: kcat sends a null key.
            msg = r["value"] or b""
            if r["value"] is None or r["value"] == b"":
                raise SystemExit("record %s: kcat cannot send a null key with an empty or null value" % r["name"])
        else:
            if r["value"] is None:
                # -Z turns an empty value (and an empty key) into null.
                if r["key"] == b"":
                    raise SystemExit("record %s: kcat cannot send an empty key with a null value" % r["name"])
                args.append("-Z")
            msg = r["key"] + kd + (r["value"] or b"")
        for n, v in r["headers"]:
            if v is None or b"\x00" in v or b"," in v or b"=" in v or "=" in n or "," in n:
                raise SystemExit("record %s header %r cannot go through kcat -H / %%h" % (r["name"], n))
            args += ["-H", n.encode() + b"=" + v]
        base = os.path.join(outdir, "rec-%03d" % i)
        with open(base + ".msg", "wb") as f:
            f.write(msg)
        with open(base + ".args", "wb") as f:
            f.write(b"".join((a if isinstance(a, bytes) else a.encode()) + b"\x00" for a in args))
    return len(recs)


def _kcat_parse_headers(raw):
    if raw == b"":
        return []
    out = []
    for item in raw.split(b","):
        n, sep, v = item.partition(b"=")
        if not sep:
            raise ValueError("bad header item %r" % item)
        out.append((n.decode("utf-8"), None if v == b"NULL" else v))
    return out


def kcat_parse(data):
    """Parses kcat -f KCAT_FORMAT output into {partition: [(key, value,
    headers)]} in offset order."""
    got = {}
    pos = 0
    while pos < len(data):
        if not data.startswith(KCAT_FORMAT_START, pos):
            raise ValueError("unexpected kcat output at byte %d: %r" % (pos, data[pos:pos + 40]))
        eol = data.index(b"\n", pos)
        p, o, kl, vl = (int(x) for x in data[pos + len(KCAT_FORMAT_START):eol].split())
        pos = eol + 1
        key = None if kl < 0 else data[pos:pos + kl]
        pos += max(kl, 0)
        value = None if vl < 0 else data[pos:pos + vl]
        pos += max(vl, 0)
        if not data.startswith(KCAT_FORMAT_HDR, pos):
            raise ValueError("kcat output: missing header marker at byte %d" % pos)
        pos += len(KCAT_FORMAT_HDR)
        end = data.index(KCAT_FORMAT_END, pos)
        headers = _kcat_parse_headers(data[pos:end])
        pos = end + len(KCAT_FORMAT_END)
        got.setdefault(p, []).append((o, (key, value, headers)))
    return {p: [r for _, r in sorted(rs, key=lambda x: x[0])] for p, rs in got.items()}


def main(argv):
    if len(argv) >= 2 and argv[1] == "kcat-prepare":
        print(kcat_prepare(argv[2], int(argv[3]), argv[4]))
        return 0
    if len(argv) >= 2 and argv[1] == "kcat-format":
        print(KCAT_FORMAT)
        return 0
    if len(argv) >= 2 and argv[1] == "kcat-verify":
        path, nparts, client = argv[2], int(argv[3]), argv[4]
        _, recs = load_records()
        with open(path, "rb") as f:
            data = f.read()
        try:
            got = kcat_parse(data)
        except ValueError as e:
            return result_line(client, 0, ["cannot parse kcat output: %s" % e])
        problems = compare(expected_by_partition(recs, nparts), got)
        note = ""
        want = max(r["partition"] for r in recs) + 1
        if nparts < want:
            note = "auto-created topic has %d of %d partitions; partitions mapped modulo %d" % (nparts, want, nparts)
        return result_line(client, len(recs), problems, note)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
