// kafkajs_common.js: what the kafkajs checks (check_kafkajs.js,
// check_kafkajs_group.js) share, so that both hold the same verdict format
// and the same client, topic and producer settings.
//
//   const { fail, ... } = require('./kafkajs_common').forClient('kafkajs')
//
// kafkajs is loaded from ./node/node_modules (`npm ci` in ./node); a check
// that cannot load it fails with one FAIL line like any other failure.
'use strict'

const path = require('path')

// forClient returns the helpers of the check named client: every verdict it
// prints is "FAIL <client> ..." (run.sh greps for that name).
function forClient(client) {
  // fail prints the one-line verdict, details to stderr, and exits 1.
  function fail(reason, details) {
    console.log(`FAIL ${client} ${reason}`)
    for (const d of details || []) console.error('  ' + d)
    process.exit(1)
  }

  // failProblems fails with the first problem on the verdict line and all
  // of them on stderr.
  function failProblems(problems) {
    fail(problems[0] + (problems.length > 1 ? ` (+${problems.length - 1} more)` : ''), problems)
  }

  let kafkajs
  try {
    kafkajs = require(path.join(__dirname, 'node', 'node_modules', 'kafkajs'))
  } catch (e) {
    fail(`cannot load kafkajs (run npm ci in ${path.join(__dirname, 'node')}): ${e.message}`)
  }
  const { Kafka, logLevel, Partitioners } = kafkajs

  // args returns [BOOTSTRAP, TOPIC] from the command line, or exits 2 with
  // a usage line naming script (the check's __filename).
  function args(script) {
    const [bootstrap, topic] = process.argv.slice(2)
    if (!bootstrap || !topic) {
      console.error(`usage: ${path.basename(script)} BOOTSTRAP TOPIC`)
      process.exit(2)
    }
    return [bootstrap, topic]
  }

  // startDeadline fails the check after ms, naming where it was (status()
  // is called then, so it sees the stage the check has reached); clear the
  // returned timer when done.
  function startDeadline(ms, status) {
    return setTimeout(() => fail(`timed out after ${ms / 1000}s (${status()})`), ms)
  }

  // newKafka is a client with short timeouts whose kafkajs logs (warnings
  // and up) go to stderr, leaving stdout to the verdict.
  function newKafka(bootstrap) {
    return new Kafka({
      clientId: `xlang-${client}`,
      brokers: [bootstrap],
      connectionTimeout: 10000,
      requestTimeout: 15000,
      retry: { retries: 5, initialRetryTime: 200 },
      logLevel: logLevel.WARN,
      logCreator: () => ({ namespace, label, log }) => {
        const { message, ...extra } = log
        console.error(`kafkajs ${label} [${namespace}] ${message} ${JSON.stringify(extra)}`)
      },
    })
  }

  // createTopic creates topic with numPartitions (replication factor 1) and
  // waits until every partition has a leader.
  async function createTopic(admin, topic, numPartitions) {
    await admin.createTopics({
      topics: [{ topic, numPartitions, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 15000,
    })
  }

  // idempotentProducer is the producer both checks test: idempotent, one
  // request in flight, placing keyed records with kafkajs's default
  // (murmur2) partitioner.
  function idempotentProducer(kafka) {
    return kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // kafkajs warns that bounded retries weaken idempotence; the check's
      // deadline bounds the run instead.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    })
  }

  // run runs the check's async main; whatever it throws becomes the FAIL
  // line, its stack on stderr.
  function run(main) {
    main().catch(e => fail(`${e.name || 'Error'}: ${e.message}`, [e.stack]))
  }

  return { fail, failProblems, args, startDeadline, newKafka, createTopic, idempotentProducer, run, Partitioners }
}

module.exports = { forClient }
