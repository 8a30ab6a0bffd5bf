// No fire-and-forget promise in the server's sources: every promise a statement drops is handled where it is dropped,
// by `.catch(…)`, by `.then(onFulfilled, onRejected)`, or by `detach()` (src/server/hooks.ts), which logs. `void` does
// not count: it silences a linter, not an unhandled rejection. The check reads src/ with the TypeScript checker.
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const root = fileURLToPath(new URL('..', import.meta.url))

/** `file:line: text` of every statement in `files` that drops a promise without handling it. */
function floatingPromises(files: string[]): string[] {
  const program = ts.createProgram(files, { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, noEmit: true })
  const checker = program.getTypeChecker()
  const isPromise = (node: ts.Node): boolean => {
    const type = checker.getTypeAtLocation(node)
    return type.getProperty('then') !== undefined && type.getProperty('catch') !== undefined
  }
  const handled = (expr: ts.Expression): boolean => {
    if (!ts.isCallExpression(expr) || !ts.isPropertyAccessExpression(expr.expression)) return false
    const name = expr.expression.name.text
    return name === 'catch' || (name === 'then' && expr.arguments.length === 2)
  }
  const found: string[] = []
  for (const source of program.getSourceFiles()) {
    if (!files.includes(source.fileName)) continue
    const visit = (node: ts.Node): void => {
      if (ts.isExpressionStatement(node)) {
        let expr = node.expression
        while (ts.isParenthesizedExpression(expr)) expr = expr.expression
        const dropped = ts.isVoidExpression(expr) ? expr.expression : ts.isBinaryExpression(expr) ? undefined : expr
        if (dropped !== undefined && isPromise(dropped) && (ts.isVoidExpression(expr) || !handled(dropped))) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart())
          found.push(`${source.fileName.slice(root.length)}:${line + 1}: ${node.getText().split('\n')[0]}`)
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return found
}

const serverFiles = ts.sys.readDirectory(`${root}src`, ['.ts']).filter((file) => !file.includes('/src/client/'))

t.test('no statement in src/ (but the browser client) drops a promise without a catch', async (t) => {
  t.same(floatingPromises(serverFiles), [])
})

t.test('the check finds a voided promise and a dropped one, and accepts a catch or a two-handler then', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const dir = await mkdtemp(`${tmpdir()}/floating-`)
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = `${dir}/sample.ts`
  await writeFile(
    file,
    [
      'const work = (): Promise<number> => Promise.resolve(1)',
      'void work()',
      'work()',
      'work().then(() => 2)',
      'work().catch(() => 0)',
      'work().then(() => 2, () => 0)',
      'let kept: Promise<number> = work()',
      'kept = work()',
      ''
    ].join('\n')
  )
  const found = floatingPromises([file]).map((line) => line.replace(/^.*sample\.ts:/, ''))
  t.same(found, ['2: void work()', '3: work()', '4: work().then(() => 2)'])
})
