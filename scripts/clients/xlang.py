"""Shared helpers for the Python-driven cross-language client checks.

Loads records.json (the one set of records every client check must produce
and read back) and compares what a client consumed with what was sent.
Standard library only, so it runs under /usr/bin/python3 as well as any
other python3.

Also a small command line used by check_kcat.sh:

  xlang.py kcat-prepare DIR NPARTS KEYDELIM   write one input file and one
                                              argument file per record
  xlang.py kcat-verify FILE NPARTS CLIENT     parse kcat -f output and compare
"""

import base64
import json
import os
import sys

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
