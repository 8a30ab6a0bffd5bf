// Checks the package as npm would publish it: the built files (npm test builds first), the export map,
// the CommonJS and ESM entry points, and the types a consumer compiles against.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import t from 'tap'
import { connect, SECRET } from './helpers/index.js'
import { diagnose } from './helpers/typescript.js'

const require = createRequire(import.meta.url)
// Computed, so that typechecking the tests does not need dist/ (test/types/package-consumer.ts checks its types).
const pkg = 'fastify-realtime'

t.test('npm pack ships the builds, types and docs, and no tests or sources', async (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore']
  })
  const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path)
  for (const needed of [
    'package.json',
    'README.md',
    'CHANGELOG.md',
    'LICENSE',
    'docs/PROTOCOL.md',
    'dist/index.js',
    'dist/index.cjs',
    'dist/index.d.ts',
    'dist/index.d.cts',
    'dist/client.js',
    'dist/client.cjs',
    'dist/client.d.ts'
  ]) {
    t.ok(files.includes(needed), `ships ${needed}`)
  }
  t.same(
    files.filter((f) => /^(test|src|examples|bench|\.ci)\//.test(f) || f.includes('.test.')),
    [],
    'no tests, sources, examples or benchmarks'
  )
})

t.test('the CommonJS build exports the plugin three ways and serves connections', async (t) => {
  const cjs = require('fastify-realtime')
  t.equal(typeof cjs.default, 'function')
  t.equal(cjs.fastifyRealtime, cjs.default)
  t.equal(cjs.realtime, cjs.default)
  t.equal(require.resolve('fastify-realtime').endsWith('dist/index.cjs'), true)
  const app = Fastify()
  await app.register(cjs.default, { jwt: { secret: SECRET } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const client = await connect(app, 'cjs-user')
  t.equal(client.ready.data.userId, 'cjs-user')
  const client2 = require('fastify-realtime/client')
  t.equal(client2.SUBPROTOCOL, 'realtime.v1')
})

t.test('the ESM build and the client entry point', async (t) => {
  const esm = await import(pkg)
  t.equal(typeof esm.default, 'function')
  t.equal(esm.fastifyRealtime, esm.default)
  t.equal(esm.realtime, esm.default)
  t.equal(typeof esm.defineEvents, 'function')
  t.ok(esm.agentEvents['agent:thought'])
  const client = await import(`${pkg}/client`)
  t.equal(client.SUBPROTOCOL, 'realtime.v1')
  t.equal(client.BEARER_PREFIX, 'bearer.')
  t.equal(client.CloseCode.SlowConsumer, 4008)
  t.equal(client.shouldReconnect(4001), true)
})

t.test('a consumer merging its registry into the published types gets typed emits', async (t) => {
  t.same(diagnose('test/types/package-consumer.ts'), [])
})
