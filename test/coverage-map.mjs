// Coverage is measured on the library only: every test counts towards every file under src/, except the tests
// that run the built package, the example or the benchmarks in child processes. Those load code whose source maps point into
// src/ from other builds, which would blur the figures; they check behaviour, not lines. The dashboard test drives the
// example in a browser: it may be skipped (no Chromium), so the figures must not depend on it.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
  )
}

const files = walk('src')
const outside = /(^|[/\\])test[/\\](package|example|bench|bench-cluster|bench-server|dashboard|conversation|emitter-worker)\.test\.ts$/

export default (testFile) => (outside.test(testFile) ? null : files)
