#!/usr/bin/env node
// check_kafkajs.js BOOTSTRAP TOPIC
//
// kafkajs round trip of records.json: create the topic with admin(), produce
// every record with an idempotent producer (idempotent: true,
// maxInFlightRequests: 1, acks -1), consume the topic from the beginning in a
// fresh consumer group (kafkajs has no group-less consumer), compare byte for
// byte per partition in offset order, headers included.
//
// Prints one line, "PASS kafkajs N records" or "FAIL kafkajs reason"; kafkajs
// logs go to stderr. kafkajs is installed by `npm ci` in ./node.
'use strict'

const fs = require('fs')
const path = require('path')

const CLIENT = 'kafkajs'
const DEADLINE_MS = 50000 // run.sh kills the check at 60 s

const { fail, failProblems, args, startDeadline, newKafka, createTopic, idempotentProducer, run } =
  require('./kafkajs_common').forClient(CLIENT)

function loadRecords() {
  const doc = JSON.parse(fs.readFileSync(path.join(__dirname, 'records.json'), 'utf8'))
  const b = v => (v === null ? null : Buffer.from(v, 'base64'))
  return {
    partitions: doc.partitions,
    records: doc.records.map(r => ({
      name: r.name,
      partition: r.partition,
      key: b(r.key),
      value: b(r.value),
      headers: r.headers.map(([n, v]) => [n, b(v)]),
    })),
  }
}

// kafkajs takes and returns headers as an object; a repeated name is an array.
function headersToObject(list) {
  const obj = {}
  for (const [n, v] of list) {
    if (!(n in obj)) obj[n] = v
    else if (Array.isArray(obj[n])) obj[n].push(v)
    else obj[n] = [obj[n], v]
  }
  return obj
}

function headersFromObject(obj) {
  const out = []
  for (const n of Object.keys(obj || {})) {
    const v = obj[n]
    for (const x of Array.isArray(v) ? v : [v]) out.push([n, x === undefined ? null : x])
  }
  return out
}

function describe(b) {
  if (b === null) return 'null'
  return `${b.length} bytes ${b.subarray(0, 12).toString('hex')}${b.length > 12 ? '...' : ''}`
}

function diffBytes(what, want, got) {
  if (want === null && got === null) return null
  if (want === null || got === null) return `${what}: want ${describe(want)}, got ${describe(got)}`
  if (want.equals(got)) return null
  if (want.length !== got.length) return `${what}: want ${want.length} bytes, got ${got.length} bytes`
  let i = 0
  while (want[i] === got[i]) i++
  return `${what}: first difference at byte ${i} (want ${want[i].toString(16)}, got ${got[i].toString(16)})`
}

function compare(records, got) {
  const want = {}
  for (const r of records) (want[r.partition] = want[r.partition] || []).push(r)
  const problems = []
  const parts = new Set([...Object.keys(want), ...Object.keys(got)].map(Number))
  for (const p of [...parts].sort((a, b) => a - b)) {
    const w = want[p] || []
    const g = got[p] || []
    if (w.length !== g.length) problems.push(`partition ${p}: want ${w.length} records, got ${g.length}`)
    for (let i = 0; i < Math.min(w.length, g.length); i++) {
      const where = `partition ${p} record ${i} (${w[i].name})`
      for (const f of ['key', 'value']) {
        const d = diffBytes(f, w[i][f], g[i][f])
        if (d) problems.push(`${where} ${d}`)
      }
      const wh = w[i].headers
      const gh = g[i].headers
      const same =
        wh.length === gh.length &&
        wh.every(([n, v], j) => n === gh[j][0] && diffBytes('h', v, gh[j][1]) === null)
      if (!same) {
        const fmt = hs => JSON.stringify(hs.map(([n, v]) => [n, v === null ? null : v.toString('hex')]))
        problems.push(`${where} headers: want ${fmt(wh)}, got ${fmt(gh)}`)
      }
    }
  }
  return problems
}

async function main() {
  const [bootstrap, topic] = args(__filename)
  let stage = 'connect'
  let progress = () => ''
  const timer = startDeadline(DEADLINE_MS, () => `${stage}${progress()}`)
  const { partitions: nparts, records } = loadRecords()
  const kafka = newKafka(bootstrap)

  stage = 'create topic'
  const admin = kafka.admin()
  await admin.connect()
  await createTopic(admin, topic, nparts)

  stage = 'produce'
  const producer = idempotentProducer(kafka)
  await producer.connect()
  await producer.send({
    topic,
    acks: -1,
    messages: records.map(r => ({
      partition: r.partition,
      key: r.key,
      value: r.value,
      headers: headersToObject(r.headers),
    })),
  })
  await producer.disconnect()

  stage = 'list offsets'
  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const remaining = {}
  let total = 0
  for (const o of offsets) {
    const n = Number(BigInt(o.high) - BigInt(o.low))
    remaining[o.partition] = n
    total += n
  }
  if (total !== records.length) {
    fail(`topic holds ${total} records after produce (offsets ${JSON.stringify(offsets)}), want ${records.length}`)
  }

  stage = 'consume'
  const got = {}
  let seen = 0
  progress = () => `, ${seen} of ${total} records`
  let done
  const finished = new Promise(resolve => (done = resolve))
  const consumer = kafka.consumer({
    groupId: `xlang-kafkajs-${process.pid}-${Date.now()}`,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  })
  // A crash means kafkajs gave up retrying (e.g. no group coordinator): fail
  // now with its error instead of waiting for the deadline.
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    fail(`consumer crashed after ${seen} of ${total} records: ${payload.error.name}: ${payload.error.message}`)
  )
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      ;(got[partition] = got[partition] || []).push({
        offset: BigInt(message.offset),
        key: message.key,
        value: message.value,
        headers: headersFromObject(message.headers),
      })
      seen++
      if (seen >= total) done()
    },
  })
  await finished
  await consumer.disconnect()
  clearTimeout(timer)

  for (const p of Object.keys(got)) got[p].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))
  const problems = compare(records, got)
  if (problems.length) failProblems(problems)
  console.log(`PASS ${CLIENT} ${records.length} records`)
  process.exit(0)
}

run(main)
