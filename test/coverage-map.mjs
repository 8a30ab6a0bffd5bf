// Coverage is measured on the library only: every test counts towards every file under src/.
// (Examples and benchmarks run as child processes; they are checked by their own tests, not by coverage.)
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
  )
}

const files = walk('src')
export default () => files
