// The layer check that `npm run lint` runs (scripts/check-layers.mjs): it passes on src/ and names each import that
// breaks a rule in a copy of src/ with deliberate violations.
import { execFile } from 'node:child_process'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = (dir: string) =>
  promisify(execFile)(process.execPath, ['scripts/check-layers.mjs', dir]).then(
    ({ stdout }) => ({ code: 0, out: stdout }),
    (err: { code: number; stderr: string }) => ({ code: err.code, out: err.stderr })
  )

t.test('src/ keeps to its layers', async (t) => {
  const { code, out } = await run('src')
  t.equal(code, 0, out)
  t.match(out, /Layer check passed/)
})

t.test('an import up a layer, a public type file importing the server, and the client importing the server all fail', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'layers-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp('src', dir, { recursive: true })
  const prepend = async (file: string, line: string) => writeFile(join(dir, file), `${line}\n${await readFile(join(dir, file), 'utf8')}`)
  await prepend('protocol/constants.ts', "import { Hub } from '../server/hub.js'")
  await prepend('types.ts', "import type { Connection } from './server/connection.js'")
  await prepend('client/backoff.ts', "import type { Adapter } from '../adapters/adapter.js'")
  await prepend('server/hub.ts', "import { Questions } from './questions.js'")
  await writeFile(join(dir, 'stray.ts'), "import { now } from './server/frames.js'\n")
  const { code, out } = await run(dir)
  t.equal(code, 1)
  t.match(out, 'protocol/constants.ts (protocol) imports server/hub.ts (server)')
  t.match(out, 'types.ts (public types) imports server/connection.ts (server)')
  t.match(out, 'client/backoff.ts imports adapters/adapter.ts: the client may import only protocol/, events.ts and client/')
  t.match(out, 'server/hub.ts (server) imports server/questions.ts (agent features)')
  t.match(out, 'stray.ts belongs to no layer')
})
