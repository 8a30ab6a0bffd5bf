// Coverage is measured on the library only: every test counts towards every file under src/, except the tests
// that run the built package, the examples or the benchmarks in child processes (started through npm or tsx). Those
// load code whose source maps point into src/ from other builds, which would blur the figures (merged, they mark
// covered lines as missed); they check behaviour, not lines. The browser tests of the examples may be skipped (no
// Chromium), so the figures must not depend on them either.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
  )
}

const files = walk('src')
const outside =
  /(^|[/\\])test[/\\](package|example|bench|bench-cluster|bench-server|dashboard|conversation|task-graph|python-executor|emitter-worker)\.test\.ts$/

export default (testFile) => (outside.test(testFile) ? null : files)
