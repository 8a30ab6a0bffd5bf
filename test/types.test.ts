import t from 'tap'
import ts from 'typescript'

const configPath = ts.findConfigFile(process.cwd(), ts.sys.fileExists, 'tsconfig.json') as string
const { config } = ts.readConfigFile(configPath, ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, process.cwd())

/** Compiles one fixture on its own (declaration merging is global to a program) and returns its errors. */
function diagnose(file: string): string[] {
  const program = ts.createProgram([file], { ...options, noEmit: true })
  return ts
    .getPreEmitDiagnostics(program)
    .map(
      (d) =>
        `${d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : ''} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    )
}

t.test('a merged registry types emit, handle, request and the event union', async (t) => {
  t.same(diagnose('test/types/registry.ts'), [])
})

t.test('without a merged registry the agentEvents preset types app.realtime', async (t) => {
  t.same(diagnose('test/types/default.ts'), [])
})

t.test('a wrong event name and a wrong payload do not compile', async (t) => {
  const errors = diagnose('test/types/negative-control.ts')
  t.equal(errors.length, 2, errors.join('\n'))
  t.match(errors[0], /negative-control\.ts:8 .*"agent:thougth"/s)
  t.match(errors[1], /negative-control\.ts:9 .*Type 'number' is not assignable to type 'string'/s)
})
