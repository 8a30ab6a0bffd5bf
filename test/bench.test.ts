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
