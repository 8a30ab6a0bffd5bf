// Keeps the cluster benchmark working: a tiny run (20 clients × 20 events, one repetition) must complete and report
// sane figures for both contenders. Its servers and clients run in child processes (test/coverage-map.mjs keeps it
// out of src/ coverage); nothing here is timed, since speed is what the benchmark itself reports.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import type { Run, Summary } from '../bench/cluster/main.js'
import { requireRedis } from './helpers/redis.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = ['--clients', '20', '--events', '20', '--latency-events', '20', '--rate', '200', '--reps', '1', '--json']

t.test('bench/cluster runs both contenders on two instances each and reports every figure', { skip: requireRedis(t) }, async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/cluster/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000
  })
  const result = JSON.parse(stdout) as { summary: Record<string, Summary>; ratio: Record<string, number>; runs: Run[] }
  t.same(Object.keys(result.summary).sort(), ['fastify-realtime', 'socket.io'])
  t.same(result.runs.map((r) => r.contender).sort(), ['fastify-realtime', 'socket.io'], 'one measured run of each')
  for (const run of result.runs) {
    const name = run.contender
    t.equal(run.lost, 0, `${name}: every client got every event`)
    t.equal(run.emitErrors, 0, `${name}: no emit failed`)
    t.ok(run.deliveriesPerSec > 0 && Number.isFinite(run.deliveriesPerSec), `${name}: ${run.deliveriesPerSec} deliveries/s`)
    const { p50, p99, max } = run.latency
    t.ok(p50 > 0 && p50 <= p99 && p99 <= max, `${name}: latency 0 < p50 ${p50} ≤ p99 ${p99} ≤ max ${max} ms`)
    t.ok(run.cpuPerDelivery > 0, `${name}: ${run.cpuPerDelivery} µs server CPU per delivery`)
    t.ok(run.cpuPerDeliverySteady > 0, `${name}: ${run.cpuPerDeliverySteady} µs server CPU per delivery at a steady rate`)
    t.ok(run.redisCommandsPerEmit >= 1, `${name}: ${run.redisCommandsPerEmit} Redis commands per emit`)
    t.ok((run.redisCommands.publish ?? 0) >= 1, `${name}: at least one PUBLISH per emit`)
  }
  // Our emit is one script that also stamps the seq and stores the history: more commands than a bare PUBLISH.
  const ours = result.runs.find((r) => r.contender === 'fastify-realtime') as Run
  t.ok((ours.redisCommands.evalsha ?? 0) >= 1 && (ours.redisCommands.xadd ?? 0) >= 1, 'ours: EVALSHA with an XADD per emit')
  for (const [key, ratio] of Object.entries(result.ratio)) t.ok(Number.isFinite(ratio) && ratio > 0, `ratio of ${key}: ${ratio}`)
})
