#!/usr/bin/env node
// The layer check run by `npm run lint`: every import in src/ goes to its own layer or a lower one (ARCHITECTURE.md
// explains the layers). Usage: node scripts/check-layers.mjs [srcDir]. Exits 1 and names each import that breaks a rule.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

/** Lowest first. A file belongs to the first layer one of whose patterns matches its path under src/. */
const LAYERS = [
  ['protocol', [/^protocol\//]],
  ['errors', [/^errors\.ts$/]],
  ['events', [/^events\.ts$/]],
  ['public types', [/^options\.ts$/, /^option-checks\.ts$/, /^origins\.ts$/, /^server-api-options\.ts$/, /^types\.ts$/]],
  ['adapters', [/^adapters\//]],
  ['agent features', [/^server\/(agent|questions|runs|streams)\.ts$/]],
  ['server', [/^server\//]],
  ['api', [/^asyncapi\.ts$/, /^api\//, /^emitter\.ts$/, /^ag-ui\//]],
  ['plugin', [/^plugin\.ts$/]],
  ['entry points', [/^index\.ts$/, /^testing\.ts$/]]
]
/** The order of the layers, lowest first. The agent features are listed before the server above only to match first. */
const RANK = {
  protocol: 0,
  errors: 1,
  events: 2,
  'public types': 3,
  adapters: 4,
  server: 5,
  'agent features': 6,
  api: 7,
  plugin: 8,
  'entry points': 9
}

/**
 * The client runs in browsers: it may import only the protocol, the event types and itself. `ag-ui/client.ts` is the
 * browser side of AG-UI: it may also import the AG-UI room names.
 */
const CLIENT = /^(client\/|ag-ui\/client\.ts$)/
const CLIENT_MAY_IMPORT = [/^client\//, /^protocol\//, /^events\.ts$/, /^ag-ui\/rooms\.ts$/]
/** The React bindings (`fastify-realtime/react`) are client-side too: the client, the protocol, the event types, themselves. */
const REACT = /^react\//
const REACT_MAY_IMPORT = [/^react\//, /^client\//, /^protocol\//, /^events\.ts$/]

/**
 * Imports that go up a layer on purpose, each with its reason. Only type imports may be listed: they leave nothing in
 * the built code.
 */
const ALLOWED = [
  ['options.ts', 'adapters/adapter.ts', 'the `adapter` option is typed by the adapter contract'],
  ['types.ts', 'ag-ui/route.ts', '`app.realtime.agui` is typed by the AG-UI route API']
]

const layerOf = (file) => {
  for (const [name, patterns] of LAYERS) if (patterns.some((p) => p.test(file))) return name
  return undefined
}

function* sources(dir, root = dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* sources(path, root)
    else if (entry.name.endsWith('.ts')) yield relative(root, path).split('\\').join('/')
  }
}

/** Relative imports and re-exports of a file, with whether each is type-only. */
function importsOf(text) {
  const found = []
  const pattern = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/gm
  for (const m of text.matchAll(pattern)) found.push({ typeOnly: m[2] !== undefined, spec: m[3] })
  return found
}

const root = resolve(process.argv[2] ?? 'src')
const problems = []
for (const file of sources(root)) {
  const text = readFileSync(join(root, file), 'utf8')
  const from = layerOf(file)
  for (const { typeOnly, spec } of importsOf(text)) {
    const target = relative(root, resolve(root, dirname(file), spec))
      .split('\\')
      .join('/')
      .replace(/\.js$/, '.ts')
    if (CLIENT.test(file)) {
      if (!CLIENT_MAY_IMPORT.some((p) => p.test(target)))
        problems.push(`${file} imports ${target}: the client may import only protocol/, events.ts and client/`)
      continue
    }
    if (REACT.test(file)) {
      if (!REACT_MAY_IMPORT.some((p) => p.test(target)))
        problems.push(`${file} imports ${target}: the React bindings may import only client/, protocol/, events.ts and react/`)
      continue
    }
    if (CLIENT.test(target) || REACT.test(target)) {
      if (from !== 'entry points') problems.push(`${file} imports ${target}: only the entry points may import the client`)
      continue
    }
    const to = layerOf(target)
    if (from === undefined || to === undefined) {
      problems.push(
        `${file} imports ${target}: ${from === undefined ? file : target} belongs to no layer (add it to scripts/check-layers.mjs)`
      )
      continue
    }
    if (RANK[to] <= RANK[from]) continue
    if (typeOnly && ALLOWED.some(([a, b]) => a === file && b === target)) continue
    problems.push(`${file} (${from}) imports ${target} (${to}): a layer may import only its own and lower layers`)
  }
}
if (problems.length > 0) {
  console.error(`Layer check failed:\n${problems.map((p) => `  ${p}`).join('\n')}`)
  process.exit(1)
}
console.log(`Layer check passed (${LAYERS.length} layers).`)
