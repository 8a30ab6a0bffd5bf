// Keeps the server fan-out benchmark working: a tiny configuration of every contender and scenario, run once in
// child processes (test/coverage-map.mjs keeps it out of src/ coverage). It checks that every contender delivered
// every event, in order, and that the report's fields are sane. Speed is not asserted: that is the benchmark's job.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import type { ContenderResult, Run, ScenarioResult } from '../bench/fanout/report.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const contenders = ['realtime', 'ws-json', 'ws-frame', 'ws-coalesce', 'fastify-ws', 'socketio', 'realtime-sse']
const SCALE = 0.02

// Thirty runs, each with two fresh processes; a busy machine makes that slow.
t.setTimeout(600_000)

t.test('bench/fanout/run.ts, scaled down, runs every contender in every scenario and reports every delivery', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'fanout-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'bench/fanout/run.ts', '--scale', String(SCALE), '--reps', '1', '--out', out, '--note', 'smoke test'],
    { cwd: root, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }
  )
  const report = JSON.parse(await readFile(join(out, 'server.json'), 'utf8')) as {
    meta: { node: string; options: { reps: number; scale: number }; note: string; versions: Record<string, string> }
    results: ScenarioResult[]
  }
  t.equal(report.meta.node, process.version)
  t.same(report.meta.options.reps, 1)
  t.equal(report.meta.options.scale, SCALE)
  t.equal(report.meta.note, 'smoke test')
  for (const pkg of ['fastify-realtime', 'ws', 'socket.io']) t.match(report.meta.versions[pkg], /^\d+\.\d+\.\d+/, `${pkg} version`)
  t.same(
    report.results.map((s) => s.id),
    ['burst-1000', 'burst-100', 'paced', 'idle', 'connect']
  )

  const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0
  for (const s of report.results) {
    t.same(
      s.contenders.map((c) => c.contender),
      contenders,
      `${s.id}: every contender`
    )
    for (const c of s.contenders as ContenderResult[]) {
      const name = `${s.id} ${c.contender}`
      t.equal(c.runs.length, 1, `${name}: one run`)
      const run = c.runs[0] as Run
      t.equal(run.error, undefined, `${name}: no error`)
      t.ok(run.ok, `${name}: its checks passed`)
      if (s.kind === 'burst' || s.kind === 'paced') {
        t.equal(run.clients, s.clients, `${name}: clients`)
        t.equal(run.expected, s.clients * (s.events as number), `${name}: deliveries expected`)
        t.equal(run.delivered, run.expected, `${name}: every event reached every client`)
        t.same(
          [run.missing, run.extra, run.unexpected, run.outOfOrder],
          [0, 0, 0, 0],
          `${name}: nothing missing, extra, foreign or out of order`
        )
        for (const k of ['deliveriesPerSecond', 'serverCpuUsPerDelivery', 'serverBusy', 'loadCpuUsPerDelivery'] as const) {
          t.ok(positive(run[k]), `${name}: ${k} ${run[k]}`)
        }
        const l = run.latencyUs as { p50: number; p99: number; max: number }
        t.ok(positive(l.p50) && l.p50 <= l.p99 && l.p99 <= l.max, `${name}: latency p50 ${l.p50} ≤ p99 ${l.p99} ≤ max ${l.max}`)
      } else if (s.kind === 'idle') {
        t.equal(run.connections, s.clients, `${name}: connections`)
        t.equal(run.subscribers, s.clients, `${name}: the server holds them all`)
        for (const k of ['rssPerConnection', 'heapPerConnection'] as const) t.ok(Number.isFinite(run[k]), `${name}: ${k} ${run[k]}`)
      } else {
        t.equal(run.connections, s.clients, `${name}: connections`)
        t.equal(run.failed, 0, `${name}: none failed`)
        t.ok(positive(run.connectsPerSecond) && positive(run.serverCpuUsPerConnect), `${name}: rate and CPU per connect`)
      }
    }
    // Ratios are to contender 3 (the limit) and to Socket.IO, so theirs are 1.
    const limit = s.contenders.find((c) => c.contender === 'ws-frame') as ContenderResult
    const io = s.contenders.find((c) => c.contender === 'socketio') as ContenderResult
    for (const v of Object.values(limit.ratio.toLimit)) t.equal(v, 1, `${s.id}: the limit's ratio to itself`)
    for (const v of Object.values(io.ratio.toSocketIO)) t.equal(v, 1, `${s.id}: Socket.IO's ratio to itself`)
    t.ok(Object.keys(limit.ratio.toLimit).length > 0, `${s.id}: ratios are given`)
  }

  const md = await readFile(join(out, 'server.md'), 'utf8')
  t.match(md, /^# Server fan-out benchmark/)
  t.match(md, /\*\*smoke test\*\*/)
  t.equal(md.match(/^### /gm)?.length, 5, 'a section per scenario')
  t.notMatch(md, /⚠ \||NaN|undefined/, 'no failed run, no missing figure')
  t.equal(md.match(/^\| 1\. fastify-realtime /gm)?.length, 5, 'fastify-realtime in every table')
})
