// Checks the package as npm would publish it: the built files (npm test builds first), the export map,
// the CommonJS and ESM entry points, and the types a consumer compiles against.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { diagnose } from './helpers/typescript.js'

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
    'dist/client.d.ts',
    'dist/testing.js',
    'dist/testing.cjs',
    'dist/testing.d.ts',
    'dist/emitter.js',
    'dist/emitter.cjs',
    'dist/emitter.d.ts'
  ]) {
    t.ok(files.includes(needed), `ships ${needed}`)
  }
  t.same(
    files.filter((f) => /^(test|src|examples|bench|\.ci)\//.test(f) || f.includes('.test.')),
    [],
    'no tests, sources, examples or benchmarks'
  )
  t.same(
    files.filter((f) => f.endsWith('.png')),
    [],
    'no screenshots: the README links to them in the repository'
  )
})

t.test('the CommonJS and ESM builds export the plugin three ways and each serves a connection', async (t) => {
  // A child process, as a consumer loads the package (test/coverage-map.mjs keeps it out of src/ coverage).
  const out = execFileSync(process.execPath, ['test/fixtures/consume-dist.mjs'], { encoding: 'utf8' })
  const seen = JSON.parse(out)
  t.match(seen.cjsPath, /dist[/\\]index\.cjs$/)
  t.same(seen.cjsForms, ['function', true, true])
  t.same(seen.esmForms, ['function', true, true])
  t.same(seen.esmHelpers, ['function', true, 'function'])
  t.same(seen.clients, ['realtime.v1', 'bearer.', 4008, true])
  t.same(seen.cjsServe, { userId: 'consumer', protocol: 'realtime.v1' })
  t.same(seen.esmServe, { userId: 'consumer', protocol: 'realtime.v1' })
  t.same(seen.testing, [
    ['tester', 'hi'],
    ['tester', 'hi']
  ])
})

t.test('a consumer merging its registry into the published types gets typed emits', async (t) => {
  t.same(diagnose('test/types/package-consumer.ts'), [])
})

t.test('the published source maps point into src/ without a copy of it, and the metadata names the repository', async (t) => {
  const maps = readdirSync('dist').filter((f) => f.endsWith('.map'))
  t.ok(maps.length > 0, 'maps are shipped')
  for (const map of maps) {
    const { sources, sourcesContent } = JSON.parse(readFileSync(join('dist', map), 'utf8'))
    t.equal(sourcesContent, undefined, `${map} embeds no sources`)
    t.ok(
      sources.some((s: string) => s.includes('src/')),
      `${map} points into src/`
    )
  }
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'))
  t.match(pkg, {
    repository: { url: 'git+https://github.com/fastify-realtime/fastify-realtime.git' },
    homepage: 'https://github.com/fastify-realtime/fastify-realtime#readme',
    bugs: { url: 'https://github.com/fastify-realtime/fastify-realtime/issues' },
    scripts: { prepack: 'npm run build' }
  })
})
