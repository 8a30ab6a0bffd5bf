import ts from 'typescript'

const configPath = ts.findConfigFile(process.cwd(), ts.sys.fileExists, 'tsconfig.json') as string
const { config } = ts.readConfigFile(configPath, ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, process.cwd())
const compilerOptions: ts.CompilerOptions = { ...options, noEmit: true }

// Every fixture is its own program, but they read the same lib, Fastify and TypeBox declarations: parse each file once
// per process and hand the same source file to every program, as an editor's language service does.
const host = ts.createCompilerHost(compilerOptions)
const parsed = new Map<string, ts.SourceFile>()
const read = host.getSourceFile.bind(host)
host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
  let file = parsed.get(fileName)
  if (file === undefined) {
    file = read(fileName, languageVersion, onError, shouldCreate)
    if (file !== undefined) parsed.set(fileName, file)
  }
  return file
}

/** Compiles one fixture on its own (declaration merging is global to a program) and returns its errors. */
export function diagnose(file: string): string[] {
  const program = ts.createProgram([file], compilerOptions, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : ''
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}
