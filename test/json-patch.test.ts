import t from 'tap'
import type { JsonPatchOperation } from '../src/index.js'
import { applyJsonPatch } from '../src/protocol/json-patch.js'

const apply = (doc: unknown, ...ops: JsonPatchOperation[]): any => applyJsonPatch(doc, ops)

t.test('add, remove, replace, move, copy and test on objects and arrays, leaving the input as it was', async (t) => {
  const doc = { a: 1, list: [1, 2, 3], deep: { x: { y: 'z' } } }
  const before = JSON.stringify(doc)
  t.same(apply(doc, { op: 'add', path: '/b', value: 2 }), { ...doc, b: 2 })
  t.same(apply(doc, { op: 'add', path: '/list/1', value: 9 }).list, [1, 9, 2, 3])
  t.same(apply(doc, { op: 'add', path: '/list/-', value: 4 }).list, [1, 2, 3, 4])
  t.same(apply(doc, { op: 'remove', path: '/a' }), { list: [1, 2, 3], deep: { x: { y: 'z' } } })
  t.same(apply(doc, { op: 'remove', path: '/list/0' }).list, [2, 3])
  t.same(apply(doc, { op: 'replace', path: '/deep/x/y', value: null }).deep, { x: { y: null } })
  t.same(apply(doc, { op: 'replace', path: '/list/2', value: 'c' }).list, [1, 2, 'c'])
  t.same(apply(doc, { op: 'replace', path: '', value: [1] }), [1])
  t.same(apply(doc, { op: 'move', from: '/a', path: '/deep/a' }), { list: [1, 2, 3], deep: { x: { y: 'z' }, a: 1 } })
  t.same(apply(doc, { op: 'copy', from: '/deep/x', path: '/c' }).c, { y: 'z' })
  t.same(apply(doc, { op: 'test', path: '/deep', value: { x: { y: 'z' } } }), doc)
  t.same(apply(doc, { op: 'test', path: '/list', value: [1, 2, 3] }), doc)
  t.same(apply({ 'a/b': 1, 'c~d': 2 }, { op: 'remove', path: '/a~1b' }, { op: 'remove', path: '/c~0d' }), {})
  t.same(apply([1, 2], { op: 'add', path: '', value: 'whole' }), 'whole')
  t.equal(JSON.stringify(doc), before, 'the input is unchanged')
})

t.test('an operation that does not apply throws, so the client refetches', async (t) => {
  const doc = { a: 1, list: [1, 2], s: 'text' }
  const bad: [string, JsonPatchOperation][] = [
    ['bad pointer', { op: 'add', path: 'a', value: 1 }],
    ['__proto__', { op: 'add', path: '/__proto__/x', value: 1 }],
    ['constructor', { op: 'replace', path: '/constructor', value: 1 }],
    ['prototype', { op: 'add', path: '/a/prototype', value: 1 }],
    ['index past the end', { op: 'add', path: '/list/3', value: 1 }],
    ['not an index', { op: 'remove', path: '/list/01' }],
    ['remove at the end', { op: 'remove', path: '/list/2' }],
    ['missing member', { op: 'remove', path: '/nope' }],
    ['remove the root', { op: 'remove', path: '' }],
    ['replace missing', { op: 'replace', path: '/nope', value: 1 }],
    ['inside a scalar', { op: 'add', path: '/s/x', value: 1 }],
    ['through a missing member', { op: 'add', path: '/nope/x', value: 1 }],
    ['get through a scalar', { op: 'test', path: '/s/x', value: 1 }],
    ['test unequal', { op: 'test', path: '/a', value: 2 }],
    ['test unequal containers', { op: 'test', path: '/list', value: [1, 3] }],
    ['test array against object', { op: 'test', path: '/list', value: { 0: 1, 1: 2 } }],
    ['test missing key', { op: 'test', path: '', value: { a: 1, list: [1, 2], t: 'text' } }],
    ['move into itself', { op: 'move', from: '/list', path: '/list/0' }],
    ['move without from', { op: 'move', path: '/b' }],
    ['copy without from', { op: 'copy', path: '/b' }],
    ['add without value', { op: 'add', path: '/b' }],
    ['unknown op', { op: 'merge', path: '/a', value: 1 } as never]
  ]
  for (const [what, op] of bad) t.throws(() => apply(doc, op), /json patch/, what)
  t.throws(() => apply(5, { op: 'add', path: '/a', value: 1 }), /json patch/, 'a member of a scalar root')
})
