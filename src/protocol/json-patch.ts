import type { JsonPatchOperation } from '../protocol/messages.js'

// A small, strict RFC 6902 applier for state rooms, run by the server on `patch()` and by the client on each
// `state_patch`: the two apply exactly the same operations, and the browser carries no JSON Patch library (the server
// computes the patch of `set()` with fast-json-patch). It works on JSON values only and never changes its input: the
// containers on each path are copied. Any failure throws: the server refuses the patch, the client asks for the whole
// value again.

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

type Json = unknown
type Container = Record<string, Json> | Json[]

function fail(message: string): never {
  throw new Error(`json patch: ${message}`)
}

/** The reference tokens of a JSON Pointer (RFC 6901); `''` is the root. */
function tokens(pointer: string): string[] {
  if (pointer === '') return []
  if (pointer[0] !== '/') fail(`bad pointer "${pointer}"`)
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      const token = t.replace(/~1/g, '/').replace(/~0/g, '~')
      if (FORBIDDEN.has(token)) fail(`forbidden segment "${token}"`)
      return token
    })
}

const isContainer = (v: Json): v is Container => typeof v === 'object' && v !== null

function index(arr: Json[], token: string, adding: boolean): number {
  if (adding && token === '-') return arr.length
  if (!/^(0|[1-9]\d*)$/.test(token)) fail(`bad array index "${token}"`)
  const i = Number(token)
  if (i > arr.length || (!adding && i === arr.length)) fail(`index ${i} out of bounds`)
  return i
}

function get(doc: Json, path: string[]): Json {
  let at = doc
  for (const token of path) {
    if (Array.isArray(at)) at = at[index(at, token, false)]
    else if (isContainer(at) && Object.hasOwn(at, token)) at = (at as Record<string, Json>)[token]
    else fail(`no value at "/${path.join('/')}"`)
  }
  return at
}

/** A copy of `doc` with `edit` applied to a copy of the container at `parent`; `at` is where `doc` is, for errors. */
function edit(doc: Json, parent: string[], change: (container: Container) => void, at = ''): Json {
  if (!isContainer(doc)) fail(at === '' ? 'the root holds no members' : `"${at}" holds no members`)
  const copy = Array.isArray(doc) ? [...doc] : { ...doc }
  if (parent.length === 0) {
    change(copy)
    return copy
  }
  const [head, ...rest] = parent as [string, ...string[]]
  const key = Array.isArray(copy) ? index(copy, head, false) : Object.hasOwn(copy, head) ? head : fail(`no value at "${at}/${head}"`)
  ;(copy as Record<string | number, Json>)[key] = edit((copy as Record<string | number, Json>)[key], rest, change, `${at}/${head}`)
  return copy
}

function add(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value
  const last = path[path.length - 1] as string
  return edit(doc, path.slice(0, -1), (c) => {
    if (Array.isArray(c)) c.splice(index(c, last, true), 0, value)
    else c[last] = value
  })
}

/** Replaces the member at `path`, which exists: it keeps its place among its siblings. */
function set(doc: Json, path: string[], value: Json): Json {
  const last = path[path.length - 1] as string
  return edit(doc, path.slice(0, -1), (c) => {
    ;(c as Record<string | number, Json>)[Array.isArray(c) ? index(c, last, false) : last] = value
  })
}

function remove(doc: Json, path: string[]): Json {
  if (path.length === 0) fail('cannot remove the root')
  const last = path[path.length - 1] as string
  return edit(doc, path.slice(0, -1), (c) => {
    if (Array.isArray(c)) c.splice(index(c, last, false), 1)
    else if (Object.hasOwn(c, last)) delete c[last]
    else fail(`no value at "${last}"`)
  })
}

function equal(a: Json, b: Json): boolean {
  if (a === b) return true
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && equal((a as never)[k], (b as never)[k]))
}

/** `doc` after `ops`, in order; throws on the first operation that does not apply (then nothing is kept). */
export function applyJsonPatch(doc: Json, ops: readonly JsonPatchOperation[]): Json {
  let out = doc
  for (const op of ops) {
    const path = tokens(op.path)
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !('value' in op)) fail(`${op.op} without value`)
    switch (op.op) {
      case 'add':
        out = add(out, path, op.value)
        break
      case 'remove':
        out = remove(out, path)
        break
      case 'replace':
        get(out, path)
        out = path.length === 0 ? op.value : set(out, path, op.value)
        break
      case 'move': {
        const from = tokens(op.from ?? fail('move without from'))
        if (path.length > from.length && from.every((t, i) => path[i] === t)) fail('cannot move a value into itself')
        const value = get(out, from)
        // A move onto itself changes nothing (RFC 6902 forbids only a proper prefix).
        if (from.join('/') !== path.join('/') || from.length !== path.length) out = add(remove(out, from), path, value)
        break
      }
      case 'copy':
        // Values are never changed in place (each edit copies its path), so the copy may share the subtree.
        out = add(out, path, get(out, tokens(op.from ?? fail('copy without from'))))
        break
      case 'test':
        if (!equal(get(out, path), op.value)) fail(`test failed at "${op.path}"`)
        break
      default:
        fail(`unknown op "${(op as { op: string }).op}"`)
    }
  }
  return out
}
