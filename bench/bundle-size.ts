// Client bundle size: what a browser app ships for our client, socket.io-client and centrifuge.
// Each contender gets a small entry module that uses its typical API (connect with a token, subscribe with a
// handler, send with an ack); all are bundled with the same esbuild settings (browser, ESM, ES2020, minified,
// tree-shaken) and measured minified, gzipped (level 9) and brotli-compressed (quality 11). Nothing is run.
//
//   npm run bench:size            prints a Markdown table and writes it to bench/results/bundle-size.md
//   npm run bench:size -- --json  prints only { esbuild, results: [{ name, version, minified, gzip, brotli }] }
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { build, version as esbuildVersion } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const command = 'npm run bench:size'

interface Contender {
  readonly name: string
  /** The package whose package.json gives the version. */
  readonly pkg: string
  /** The entry module's source. Each exports `start` so tree-shaking keeps what an app really uses. */
  readonly source: string
  /** Packages the app ships anyway (React for the React entry): not counted. */
  readonly external?: readonly string[]
}

interface Result {
  readonly name: string
  readonly version: string
  readonly minified: number
  readonly gzip: number
  readonly brotli: number
}

const contenders: readonly Contender[] = [
  {
    name: 'fastify-realtime/client',
    pkg: '.',
    source: `
import { createClient } from ${JSON.stringify(join(root, 'src/client/index.ts'))}
export function start(url, getToken) {
  const client = createClient({ url, token: getToken })
  client.subscribe('room:lobby', (event) => console.log(event.type, event.data))
  client.on('chat', (event) => console.log(event.room, event.data))
  client.onRequest('confirm', (data) => ({ ok: true, data }))
  client.onStateChange((state) => console.log(state))
  client.send('chat', { text: 'hello' }).then((ack) => console.log(ack))
  return client
}
`
  },
  {
    // What the React bindings add on top of the client (React itself is the app's).
    name: 'fastify-realtime/react',
    pkg: '.',
    external: ['react'],
    source: `
import { createElement as h } from 'react'
import { RealtimeProvider, useConnection, useQuestions, useRoom, useStream } from ${JSON.stringify(join(root, 'src/react/index.ts'))}
export function start(client) {
  function Run() {
    const { state } = useConnection()
    const room = useRoom('room:lobby')
    const stream = useStream('room:lobby')
    const questions = useQuestions('room:lobby')
    return h('p', null, state, room.events.length, stream.text, questions.length)
  }
  return h(RealtimeProvider, { client }, h(Run))
}
`
  },
  {
    name: 'socket.io-client',
    pkg: 'socket.io-client',
    source: `
import { io } from 'socket.io-client'
export function start(url, getToken) {
  const socket = io(url, { transports: ['websocket'], auth: (cb) => cb({ token: getToken() }) })
  socket.on('chat', (data) => console.log(data))
  socket.on('connect', () => console.log('connected'))
  socket.emit('chat', { text: 'hello' }, (ack) => console.log(ack))
  socket.emit('join', 'room:lobby')
  return socket
}
`
  },
  {
    name: 'centrifuge',
    pkg: 'centrifuge',
    source: `
import { Centrifuge } from 'centrifuge'
export function start(url, getToken) {
  const centrifuge = new Centrifuge(url, { getToken })
  centrifuge.newSubscription('room:lobby').on('publication', (ctx) => console.log(ctx.data)).subscribe()
  centrifuge.on('state', (ctx) => console.log(ctx.newState))
  centrifuge.connect()
  centrifuge.rpc('chat', { text: 'hello' }).then((result) => console.log(result.data))
  return centrifuge
}
`
  }
]

async function versionOf(pkg: string): Promise<string> {
  const file = pkg === '.' ? join(root, 'package.json') : join(root, 'node_modules', pkg, 'package.json')
  return JSON.parse(await readFile(file, 'utf8')).version
}

/** Bundles one entry file; the same settings for every contender. */
async function bundle(entry: string, external: readonly string[] = []): Promise<Uint8Array> {
  const result = await build({
    external: [...external],
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    treeShaking: true,
    write: false,
    legalComments: 'none',
    absWorkingDir: root,
    // The entries live in a temporary directory: resolve bare imports from the project's node_modules.
    nodePaths: [join(root, 'node_modules')]
  })
  return result.outputFiles[0]!.contents
}

function sizes(code: Uint8Array): Pick<Result, 'minified' | 'gzip' | 'brotli'> {
  return {
    minified: code.byteLength,
    gzip: gzipSync(code, { level: 9 }).byteLength,
    brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).byteLength
  }
}

async function measure(dir: string, contender: Contender, index: number): Promise<Result> {
  const entry = join(dir, `entry-${index}.js`)
  await writeFile(entry, contender.source)
  return { name: contender.name, version: await versionOf(contender.pkg), ...sizes(await bundle(entry, contender.external)) }
}

async function measureAll(): Promise<Result[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bundle-size-'))
  try {
    const results: Result[] = []
    for (const [index, contender] of contenders.entries()) results.push(await measure(dir, contender, index))
    return results
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const bytes = (n: number): string => `${n.toLocaleString('en-US')} B`

function markdown(results: readonly Result[]): string {
  const ours = results[0]!
  const rows = results.map((r) => {
    const ratio = r.name.startsWith('fastify-realtime/') ? '—' : `${(ours.gzip / r.gzip).toFixed(2)}×`
    return `| ${r.name} ${r.version} | ${bytes(r.minified)} | ${bytes(r.gzip)} | ${bytes(r.brotli)} | ${ratio} |`
  })
  return [
    '| Contender | Minified | Gzip | Brotli | Ours ÷ this (gzip) |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `esbuild ${esbuildVersion}, Node ${process.versions.node}: bundle, esm, browser, es2020, minify, tree-shaking; gzip level 9, brotli quality 11.`,
    `Reproduce: \`${command}\``,
    ''
  ].join('\n')
}

const results = await measureAll()
if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ esbuild: esbuildVersion, results })}\n`)
} else {
  const table = markdown(results)
  await mkdir(join(root, 'bench/results'), { recursive: true })
  await writeFile(join(root, 'bench/results/bundle-size.md'), table)
  process.stdout.write(table)
}
