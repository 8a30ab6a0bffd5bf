import t from 'tap'
import { diagnose } from './helpers/typescript.js'

t.test('authenticate, subscriptions, origins, emit targets, join options and leave are typed', async (t) => {
  t.same(diagnose('test/types/auth.ts'), [])
})
