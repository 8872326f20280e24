#!/usr/bin/env node
// check_kafkajs_group.js BOOTSTRAP TOPIC
//
// kafkajs consumer-group check:
//
// 1. create TOPIC with 4 partitions (admin()) and produce 400 numbered
//    records, key "key-NNN", placed by kafkajs's default (murmur2) key
//    partitioner, with an idempotent producer (idempotent: true,
//    maxInFlightRequests: 1, acks -1); the check runs the same partitioner
//    and the send() result's base offsets to know each record's partition
//    and offset;
// 2. run two consumer instances of one fresh group with kafkajs's default
//    assigner (round robin) and autoCommit (offsets of processed records are
//    committed after each batch and when a rebalance starts). kafkajs
//    rebalances eagerly: a member gives up all its partitions when it sees
//    the rebalance (REBALANCING event) and gets its new ones with GROUP_JOIN.
//    Those events keep a partition -> member table, and it is a failure when
//    a GROUP_JOIN hands a member a partition the other still holds, or when
//    a member gets a record of a partition it does not hold. Until both
//    members hold partitions, each one sleeps 20 ms per record, so that the
//    first member to join cannot drain the topic alone while the group
//    rebalances (with group.initial.rebalance.delay.ms=0 the first join
//    completes before the second member arrives). They stop when the union
//    of what they consumed covers all 400 records, all 4 partitions are
//    held and nothing arrived for 1 s; each member must have processed at
//    least one record; duplicates are allowed and counted;
// 3. disconnect both (a stopping consumer finishes its batch, commits, and
//    leaves the group);
// 4. the group's committed offsets must be the end of each partition; a
//    third consumer joins the same group and must get no record for 3 s
//    after its assignment; then 10 more records are produced and it must get
//    exactly those.
//
// Every record read is compared byte for byte (key and value) with what was
// sent, at the partition and offset it was written to.
//
// Prints one line, "PASS kafkajs-group N records (...)" or
// "FAIL kafkajs-group reason"; kafkajs logs go to stderr. kafkajs is
// installed by `npm ci` in ./node.
'use strict'

const CLIENT = 'kafkajs-group'
const DEADLINE_MS = 45000 // the whole check; run.sh kills it at 60 s
const NPARTS = 4
const NRECS = 400 // consumed by the two members
const NEXTRA = 10 // produced for the third consumer
const THROTTLE_MS = 20 // per record until the group has split
const QUIET_MS = 1000 // members stop after this long without a record
const IDLE_MS = 3000 // the third consumer must get nothing for this long

const { fail, failProblems, args, startDeadline, newKafka, createTopic, idempotentProducer, run, Partitioners } =
  require('./kafkajs_common').forClient(CLIENT)

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const keyOf = i => Buffer.from(`key-${String(i).padStart(3, '0')}`)
// Printable number, then bytes that cover 0x00 and 0xff across records.
const valueOf = i =>
  Buffer.concat([
    Buffer.from(`record ${String(i).padStart(3, '0')} `),
    Buffer.from(Array.from({ length: 24 }, (_, j) => (i * 31 + j * 7) & 0xff)),
  ])
const hex = b => (b === null ? 'null' : b.toString('hex'))

async function main() {
  const [bootstrap, topic] = args(__filename)
  const start = Date.now()
  const left = () => DEADLINE_MS - (Date.now() - start)
  let stage = 'connect'
  let progress = () => ''
  const timer = startDeadline(DEADLINE_MS, () => `${stage}${progress()}`)

  const kafka = newKafka(bootstrap)

  // 1. Topic and 400 records.
  stage = 'create topic'
  const admin = kafka.admin()
  await admin.connect()
  await createTopic(admin, topic, NPARTS)

  const placed = new Map() // "partition/offset" -> record number
  const ends = {} // partition -> end offset
  const producer = idempotentProducer(kafka)
  await producer.connect()
  // The producer's partitioner, run here too: with the send() result's base
  // offsets it tells where each record went (kafkajs keeps the order of one
  // send() within a partition).
  const partitionOf = Partitioners.DefaultPartitioner()
  const partitionMetadata = Array.from({ length: NPARTS }, (_, p) => ({ partitionId: p, leader: 0 }))
  const produce = async numbers => {
    const byPartition = {}
    for (const i of numbers) {
      const p = partitionOf({ topic, partitionMetadata, message: { key: keyOf(i) } })
      ;(byPartition[p] = byPartition[p] || []).push(i)
    }
    const res = await producer.send({
      topic,
      acks: -1,
      messages: numbers.map(i => ({ key: keyOf(i), value: valueOf(i) })),
    })
    for (const r of res) {
      if (r.errorCode !== 0) fail(`produce to partition ${r.partition}: error code ${r.errorCode}`)
      const base = BigInt(r.baseOffset)
      ;(byPartition[r.partition] || []).forEach((i, k) => placed.set(`${r.partition}/${base + BigInt(k)}`, i))
    }
    if (res.length !== Object.keys(byPartition).length) {
      fail(`send() answered for partitions ${res.map(r => r.partition)}, the records went to ${Object.keys(byPartition)}`)
    }
  }
  stage = 'produce'
  await produce(Array.from({ length: NRECS }, (_, i) => i))
  const readEnds = async () => {
    for (const o of await admin.fetchTopicOffsets(topic)) ends[o.partition] = Number(o.high)
  }
  await readEnds()
  const total = Object.values(ends).reduce((a, b) => a + b, 0)
  if (placed.size !== NRECS || total !== NRECS) {
    fail(`topic holds ${total} records after produce (ends ${JSON.stringify(ends)}), placed ${placed.size}, want ${NRECS}`)
  }
  if (Object.values(ends).some(n => n === 0)) {
    fail(`the keys did not spread over all ${NPARTS} partitions: end offsets ${JSON.stringify(ends)}`)
  }
  console.error(`produced ${NRECS} records, end offsets ${JSON.stringify(ends)}`)

  // Compares a consumed message with what was produced at its partition and
  // offset; returns the record number (undefined if unknown).
  const problems = []
  const verify = (who, partition, message) => {
    const i = placed.get(`${partition}/${message.offset}`)
    if (i === undefined) {
      problems.push(`${who} got partition ${partition} offset ${message.offset}, which the check did not produce`)
      return undefined
    }
    for (const [what, want, got] of [
      ['key', keyOf(i), message.key],
      ['value', valueOf(i), message.value],
    ]) {
      if (got === null || !want.equals(got)) {
        problems.push(`${who}: partition ${partition} offset ${message.offset} (record ${i}) ${what}: want ${hex(want)}, got ${hex(got)}`)
      }
    }
    return i
  }

  // 2. Two members of one fresh group.
  stage = 'group of two'
  const groupId = `xlang-kafkajs-group-${process.pid}-${Date.now()}`
  const consumerConfig = {
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false,
  }
  const owner = new Map() // partition -> name of the member holding it
  let split = false // both members have held partitions at once
  let lastRecord = 0
  const members = ['member-1', 'member-2'].map(name => ({
    name,
    consumer: kafka.consumer(consumerConfig),
    held: new Set(), // partitions assigned now
    ever: new Set(), // partitions ever assigned
    seen: new Map(), // record number -> times processed
  }))
  const release = m => {
    for (const p of m.held) if (owner.get(p) === m.name) owner.delete(p)
    m.held.clear()
  }
  const union = () => new Set(members.flatMap(m => [...m.seen.keys()]))
  progress = () => `, ${union().size} of ${NRECS} records; ${members.map(m => `${m.name} holds [${[...m.held]}]`).join(', ')}`

  for (const m of members) {
    const { consumer } = m
    const { GROUP_JOIN, REBALANCING, STOP, CRASH } = consumer.events
    // REBALANCING: the member saw a rebalance and gives up every partition
    // (eager protocol) before it sends JoinGroup.
    consumer.on(REBALANCING, () => {
      console.error(`${m.name} rebalancing, gives up [${[...m.held]}]`)
      release(m)
    })
    consumer.on(GROUP_JOIN, ({ payload }) => {
      const parts = (payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
      release(m) // a rejoin after UNKNOWN_MEMBER_ID has no REBALANCING event
      for (const p of parts) {
        const other = owner.get(p)
        if (other !== undefined && other !== m.name) {
          problems.push(`partition ${p} assigned to ${m.name} while ${other} still holds it`)
        }
        owner.set(p, m.name)
        m.held.add(p)
        m.ever.add(p)
      }
      if (members.every(x => x.held.size > 0)) split = true
      console.error(`${m.name} joined (leader: ${payload.isLeader}, protocol ${payload.groupProtocol}), holds [${parts}]`)
    })
    consumer.on(STOP, () => release(m))
    consumer.on(CRASH, ({ payload }) =>
      fail(`${m.name} crashed after ${union().size} of ${NRECS} records: ${payload.error.name}: ${payload.error.message}`)
    )
  }

  await Promise.all(
    members.map(async m => {
      await m.consumer.connect()
      await m.consumer.subscribe({ topics: [topic], fromBeginning: true })
      await m.consumer.run({
        autoCommit: true,
        eachMessage: async ({ partition, message }) => {
          if (!m.held.has(partition)) {
            problems.push(`${m.name} got partition ${partition} offset ${message.offset} while not holding the partition (holds [${[...m.held]}])`)
          }
          const i = verify(m.name, partition, message)
          if (i !== undefined) m.seen.set(i, (m.seen.get(i) || 0) + 1)
          lastRecord = Date.now()
          if (!split) await sleep(THROTTLE_MS)
        },
      })
    })
  )

  while (true) {
    if (problems.length) break
    const done =
      union().size === NRECS && owner.size === NPARTS && lastRecord > 0 && Date.now() - lastRecord >= QUIET_MS
    if (done) break
    if (left() < 20000) break // leave time for stopping and the third consumer
    await sleep(50)
  }
  const n = union().size
  const holding = members.map(m => `${m.name} holds [${[...m.held]}]`).join(', ')

  // 3. Stop both members.
  stage = 'disconnect the two members'
  await Promise.all(members.map(m => m.consumer.disconnect()))
  if (problems.length) failProblems(problems)
  if (n !== NRECS) fail(`the two members consumed ${n} of ${NRECS} records (${holding})`)
  for (const m of members) {
    if (m.ever.size === 0 || m.seen.size === 0) {
      const other = members.find(x => x !== m)
      fail(`${m.name} got partitions [${[...m.ever]}] and ${m.seen.size} records: the group did not split the work (${other.name}: partitions [${[...other.ever]}])`)
    }
  }
  const count = m => [...m.seen.values()].reduce((a, b) => a + b, 0)
  const dups = members.reduce((a, m) => a + count(m), 0) - NRECS
  const splitNote = members
    .map(m => `${m.name} ${count(m)} records from partitions ${[...m.ever].sort((a, b) => a - b).join(',')}`)
    .join(', ')
  console.error(`members done: ${splitNote}; ${dups} duplicates`)

  // 4. The committed offsets, then a third consumer.
  stage = 'committed offsets'
  const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions
  const wrong = committed
    .filter(c => Number(c.offset) !== ends[c.partition])
    .map(c => `partition ${c.partition} at ${c.offset}, end ${ends[c.partition]}`)
  if (wrong.length || committed.length !== NPARTS) {
    fail(`after both members stopped, the group's committed offsets are not the end: ${wrong.join('; ') || JSON.stringify(committed)}`)
  }

  stage = 'third consumer joins'
  const third = kafka.consumer(consumerConfig)
  let thirdHeld = []
  // Records are checked after the fact: a fetch can hand over the new
  // records before send() has returned their offsets.
  const got = [] // {partition, message}
  third.on(third.events.GROUP_JOIN, ({ payload }) => {
    thirdHeld = payload.memberAssignment[topic] || []
    console.error(`member-3 joined, holds [${thirdHeld}]`)
  })
  third.on(third.events.CRASH, ({ payload }) =>
    fail(`member-3 crashed: ${payload.error.name}: ${payload.error.message}`)
  )
  await third.connect()
  await third.subscribe({ topics: [topic], fromBeginning: true })
  await third.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, message })
    },
  })
  while (thirdHeld.length < NPARTS) {
    if (left() < 8000) fail(`member-3 holds partitions [${thirdHeld}], not all ${NPARTS}`)
    await sleep(50)
  }
  stage = 'third consumer idle'
  await sleep(IDLE_MS)
  if (got.length) {
    const r = got[0]
    const i = verify('member-3', r.partition, r.message)
    fail(`member-3 got ${got.length} records already processed by the group, the first partition ${r.partition} offset ${r.message.offset} (record ${i})`)
  }

  stage = 'third consumer gets the new records'
  const before = new Set(placed.keys())
  await produce(Array.from({ length: NEXTRA }, (_, k) => NRECS + k))
  const want = [...placed.keys()].filter(k => !before.has(k)).sort()
  progress = () => `, member-3 got ${got.length} of ${NEXTRA}`
  while (got.length < NEXTRA && left() > 1500) await sleep(50)
  await sleep(Math.min(1000, Math.max(left() - 1000, 0))) // anything beyond the 10 new records
  await third.disconnect()
  await producer.disconnect()
  await admin.disconnect()
  clearTimeout(timer)

  const stale = got.filter(r => verify('member-3', r.partition, r.message) < NRECS).length
  if (problems.length) failProblems(problems)
  const have = got.map(r => `${r.partition}/${r.message.offset}`).sort()
  if (stale || have.length !== NEXTRA || have.join() !== want.join()) {
    fail(`member-3 got ${got.length} records after the ${NEXTRA} new ones were produced (${stale} old), want exactly the new ones: got [${have}], want [${want}]`)
  }
  console.log(`PASS ${CLIENT} ${NRECS + NEXTRA} records (${splitNote}; ${dups} duplicates; member-3 got only the ${NEXTRA} new)`)
  process.exit(0)
}

run(main)
