// The published declarations as a consumer compiles them: the packed package (npm test builds first) installed in
// a fresh directory, every entry of package.json `exports`, the README's TypeScript snippets and
// test/types/published.ts, under each moduleResolution, with `skipLibCheck: false` and `strict`.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'

const root = resolve(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

const modes = {
  Bundler: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler },
  Node10: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Node10 },
  Node16: { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 },
  NodeNext: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }
} satisfies Record<string, ts.CompilerOptions>

const common: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  types: ['node'],
  strict: true,
  skipLibCheck: false,
  // TypeScript's own lib files are not what is under test; every package's declarations are.
  skipDefaultLibCheck: true,
  noEmit: true,
  paths: { tap: ['./stubs/tap.d.ts'] }
}

// Parsed once for all four modes: the declarations of fastify, ws and node are most of the work.
const parsed = new Map<string, ts.SourceFile | undefined>()
const host = ts.createCompilerHost(common)
const read = host.getSourceFile
host.getSourceFile = (fileName, version, ...rest) => {
  const format = typeof version === 'object' ? version.impliedNodeFormat : undefined
  const key = `${fileName}:${format}`
  if (!parsed.has(key)) parsed.set(key, read.call(host, fileName, version, ...rest))
  return parsed.get(key)
}

/** Installs the packed package in a fresh directory whose other dependencies are this repository's. */
function consumer(): string {
  const dir = mkdtempSync(join(tmpdir(), 'realtime-consumer-'))
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore']
  })
  const installed = join(dir, 'node_modules', 'fastify-realtime')
  mkdirSync(installed, { recursive: true })
  execFileSync('tar', ['-xzf', join(dir, JSON.parse(out)[0].filename), '-C', installed, '--strip-components=1'])
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === 'fastify-realtime' || name.startsWith('.')) continue
    symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name), 'junction')
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  return dir
}

interface Snippet {
  line: number
  code: string
}

/** A page's ```ts blocks. A line the page marks `// compile error` must be one: it becomes @ts-expect-error. */
function snippetsOf(page: string): Snippet[] {
  const lines = readFileSync(join(root, page), 'utf8').split('\n')
  const snippets: Snippet[] = []
  let current: Snippet | undefined
  lines.forEach((text, i) => {
    if (current === undefined && text.trim() === '```ts') current = { line: i + 2, code: '' }
    else if (current !== undefined && text.trim() === '```') {
      snippets.push(current)
      current = undefined
    } else if (current !== undefined) {
      current.code += /\/\/ compile error$/.test(text) ? `// @ts-expect-error the README says so\n${text}\n` : `${text}\n`
    }
  })
  return snippets
}

const dir = consumer()
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
cpSync(join(root, 'test/types/readme'), dir, { recursive: true })
cpSync(join(root, 'test/types/published.ts'), join(dir, 'published.ts'))

// One probe per entry of `exports`: a new entry is in the matrix as soon as it is in package.json.
const entries = Object.keys(pkg.exports).filter((entry) => entry !== './package.json')
const where = new Map<string, string>()
for (const entry of entries) {
  const file = join(dir, 'entries', `${entry === '.' ? 'index' : entry.slice(2)}.ts`)
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(file, `import * as entry from '${join(pkg.name, entry)}'\nexport { entry }\n`)
  where.set(file, `the entry ${entry}`)
}
where.set(join(dir, 'published.ts'), 'test/types/published.ts')
// The README's snippets, and the migration guide's: every block of both compiles, so neither can rot.
for (const [page, folder] of [
  ['README.md', 'readme'],
  ['docs/MIGRATING.md', 'migrating']
] as const) {
  snippetsOf(page).forEach((snippet, i) => {
    const file = join(dir, folder, `snippet-${i + 1}.ts`)
    mkdirSync(join(file, '..'), { recursive: true })
    // `export {}` makes every snippet a module, so top-level await is allowed and its names are its own.
    writeFileSync(file, `${snippet.code}export {}\n`)
    where.set(file, `${page}:${snippet.line}`)
  })
}

/** One program per mode: the README's snippets are one app's code, and its registry (snippet 2) is the app's. */
function diagnose(options: ts.CompilerOptions): string[] {
  const program = ts.createProgram(
    [...where.keys(), join(dir, 'globals.d.ts'), join(dir, 'session.ts')],
    { ...common, ...options, baseUrl: dir },
    host
  )
  // Every file of ours and of the installed package, in full; other packages' declarations only as far as those
  // use them (checking all of fastify's, ws's and TypeBox's would take a minute per mode and test other projects).
  const ours = program.getSourceFiles().filter((file) => resolve(file.fileName).startsWith(dir))
  const found = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])
  ]
  return found.map((d) => {
    const file = d.file?.fileName ?? ''
    const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0
    return `${where.get(resolve(file)) ?? file} (line ${line}): ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

t.test('every entry of exports, the README snippets and the error classes compile in each moduleResolution', async (t) => {
  t.ok(entries.length >= 4, `the matrix covers ${entries.join(', ')}`)
  for (const [mode, options] of Object.entries(modes)) {
    const started = Date.now()
    t.same(diagnose(options), [], `${mode} (${Date.now() - started} ms)`)
  }
})

t.test('Node10 resolution finds the types of every subpath through typesVersions', async (t) => {
  const subpaths = entries.filter((entry) => entry !== '.').map((entry) => entry.slice(2))
  t.same(Object.keys(pkg.typesVersions['*']).sort(), subpaths.sort(), 'one typesVersions mapping per subpath export')
  for (const sub of subpaths) t.equal(pkg.typesVersions['*'][sub][0], pkg.exports[`./${sub}`].require.types)
})
