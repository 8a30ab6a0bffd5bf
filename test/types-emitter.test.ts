import t from 'tap'
import { diagnose } from './helpers/typescript.js'

t.test('the emitter is typed by the registry it is given, and serverApi by its options', async (t) => {
  t.same(diagnose('test/types/emitter.ts'), [])
})
