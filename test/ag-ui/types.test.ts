import t from 'tap'
import { diagnose } from '../helpers/typescript.js'

t.test('the AG-UI preset, route, run object and RealtimeAgent are typed, and wrong events do not compile', async (t) => {
  t.same(diagnose('test/types/agui.ts'), [])
})
