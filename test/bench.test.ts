// Keeps the bundle-size benchmark working: it runs in a child process (test/coverage-map.mjs keeps it out of
// src/ coverage) and its figures are deterministic for fixed versions, so the size ordering can be asserted.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Result {
  name: string
  version: string
  minified: number
  gzip: number
  brotli: number
}

t.test('bench/bundle-size.ts --json measures our client, our React entry, socket.io-client and centrifuge', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/bundle-size.ts', '--json'], {
    cwd: root,
    encoding: 'utf8'
  })
  const { esbuild, results } = JSON.parse(stdout) as { esbuild: string; results: Result[] }
  t.match(esbuild, /^\d+\.\d+\.\d+$/, 'reports the esbuild version')
  t.same(
    results.map((r) => r.name),
    ['fastify-realtime/client', 'fastify-realtime/react', 'socket.io-client', 'centrifuge']
  )
  for (const r of results) {
    t.match(r.version, /^\d+\.\d+\.\d+/, `${r.name} has a version`)
    for (const size of [r.minified, r.gzip, r.brotli]) t.ok(Number.isInteger(size) && size > 0, `${r.name}: ${size} is a positive integer`)
    t.ok(r.gzip < r.minified, `${r.name}: gzip ${r.gzip} < minified ${r.minified}`)
  }
  const [ours, , ...peers] = results as [Result, Result, ...Result[]]
  for (const peer of peers) t.ok(ours.gzip < peer.gzip, `our gzip ${ours.gzip} < ${peer.name}'s ${peer.gzip}`)
})

t.test('bench/memory-pin.ts measures every hostile pattern against a server of its own, scaled down', async (t) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'bench/memory-pin.ts', '--connections', '3', '--dry'],
    {
      cwd: root,
      encoding: 'utf8'
    }
  )
  const rows = stdout.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| pattern') && !line.startsWith('| ---'))
  t.same(
    rows.map((row) => row.split(' | ')[0]?.slice(2)),
    [
      'an idle authenticated connection',
      'an unfinished message in 63 fragments of 1 KiB',
      'one frame of 64 KiB, all but its last byte',
      '40 subscribes waiting on an authorize that hangs',
      'a reader that never reads, its room streaming 3,000 events of 1 KiB (peak, before GC)'
    ]
  )
  for (const line of rows)
    t.match(
      line,
      /\| -?[\d,]+ B \| -?[\d,]+ B \| -?[\d,]+ B \| (—|-?[\d.]+) \| -?[\d,]+ B \| \d+ of 3 \|/,
      'bytes sent, memory per connection, beyond idle, per byte, per user, open'
    )
  t.match(rows[1], /\| 3 of 3 \|/, 'the fragmented messages are held, not refused, below the limits')
})
