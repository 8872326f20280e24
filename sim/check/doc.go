// Package check holds the checkers, each a named function tied to a claim
// of DESIGN.md section 6, run on every seed's history:
//
//   - Linearizability (claim 2): produce and fetch are linearizable per
//     partition, checked with Porcupine against a model whose state is the
//     committed end offset and a chained hash of the committed values.
//   - Anomalies (claims 1 and 2): Jepsen's Kafka anomaly classes —
//     lost-write, unseen, duplicate, inconsistent-offsets, poll-skip,
//     nonmonotonic-send and nonmonotonic-poll.
//   - Durability (claim 1): every acknowledged record (acks=1 or all) is at
//     its offset in the final read, unless its topic was deleted or
//     retention was entitled to delete it.
//   - Idempotence (claim 3): an idempotent producer's records appear once
//     each, in the order sent, however often they were retried.
//   - Groups (claim 5): in one generation a partition has one owner;
//     acknowledged commits never move back, an offset fetch sees every
//     commit acknowledged before it, no commit of a generation the
//     coordinator moved past succeeds, and each group's commits and offset
//     fetches of a partition are linearizable (Porcupine, a register that
//     deletes reset) — over the whole run, since group state is durable,
//     comparing generations and offsets only where no DeleteGroups or
//     OffsetDelete may have taken effect between them.
//   - Monitor (claims 1 and 2, online): invariants checked as each response
//     arrives — the high watermark a client sees never goes back (nor below
//     an acknowledged offset), the log start never passes it, no record is
//     served at or above it, and a fetch starts where it was asked to.
//
// Attribution. Produce requests name topics, not incarnations, so a record
// is tied to a topic id only when that is certain: while the name was bound
// to one id for the whole operation (from the acknowledged creation that
// returned the id to the next create or delete of the name). Other
// operations still count where they might have landed (as operations of
// unknown outcome) but carry no claims. Fetches by topic id (v13+) are
// always attributed.
package check
