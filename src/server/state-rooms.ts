import { randomBytes } from 'node:crypto'
import { type Static, type TSchema, Type } from '@sinclair/typebox'
import jsonpatch from 'fast-json-patch'
import type { StateDocument } from '../adapters/adapter.js'
import { FST_REALTIME_ADAPTER_FAILED, FST_REALTIME_INVALID_OPTION, FST_REALTIME_INVALID_STATE } from '../errors.js'
import { isSchema } from '../events.js'
import { applyJsonPatch } from '../protocol/json-patch.js'
import type { JsonPatchOperation } from '../protocol/messages.js'
import { type Checker, compile, JsonPatchOperation as OperationSchema } from '../protocol/schemas.js'
import type { StateChange, StateHandle, StateOptions } from '../types.js'
import * as frames from './frames.js'
import type { Hub } from './hub.js'

/** A document as this instance last saw it, with its value parsed. */
interface Known {
  readonly epoch: string
  readonly version: number
  readonly value: unknown
}

/** Commits that lost to another writer in a row before `set()`/`patch()` gives up with an error. */
const MAX_ATTEMPTS = 100
const MAX_TTL = 2 ** 31 - 1
const checkOps: Checker = compile(Type.Array(OperationSchema))

/** `subscribed.data.state` of a room whose document is `doc`: nothing for a room without one. */
export function stateItem(doc: StateDocument | undefined): { state?: { value: unknown; version: number; epoch: string } } {
  return doc === undefined ? {} : { state: { value: JSON.parse(doc.value), version: doc.version, epoch: doc.epoch } }
}

/**
 * A state room: one JSON value, kept by the adapter and shared by every instance. Each change is computed against the
 * document as this handle last saw it and committed only if the document is still that one; when another writer got
 * there first, the document is read again and the change computed anew, so no update is lost. Changes made through
 * one handle run one after another.
 */
export function openState<S extends TSchema>(hub: Hub, room: string, options: StateOptions<S> = {}): StateHandle<Static<S>> {
  hub.checkRoom(room)
  const { adapter } = hub
  const read = adapter.documentRead?.bind(adapter)
  const commit = adapter.documentCommit?.bind(adapter)
  if (read === undefined || commit === undefined) {
    throw new FST_REALTIME_INVALID_OPTION(
      `state("${room}"): the ${adapter.name} adapter does not keep state rooms (no documentRead/documentCommit)`
    )
  }
  const { schema, ttl } = options
  if (schema !== undefined && !isSchema(schema))
    throw new FST_REALTIME_INVALID_OPTION(`state("${room}"): option "schema" must be a TypeBox schema`)
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= MAX_TTL)) {
    throw new FST_REALTIME_INVALID_OPTION(`state("${room}"): option "ttl" must be a whole number of ms from 1 to ${MAX_TTL} (got ${ttl})`)
  }
  const check = schema === undefined ? undefined : compile(schema)
  let known: Known | undefined
  let chain: Promise<unknown> = Promise.resolve()

  const failed = (err: unknown): never => {
    throw new FST_REALTIME_ADAPTER_FAILED(adapter.name, String(err), { cause: err })
  }

  /** Whether `known` was ever read: a handle that has not looked yet must not take the room for empty. */
  let looked = false
  const fetch = async (): Promise<Known | undefined> => {
    const doc = await read(room).catch(failed)
    known = doc === undefined ? undefined : { epoch: doc.epoch, version: doc.version, value: JSON.parse(doc.value) }
    looked = true
    return known
  }

  const enqueue = <T>(step: () => Promise<T>): Promise<T> => {
    const next = chain.then(step)
    chain = next.catch(() => undefined)
    return next
  }

  /** Computes the next value from the current one and commits it, reading again after each lost race. */
  const change = async (
    compute: (current: unknown) => unknown,
    sent: (base: Known, next: unknown) => JsonPatchOperation[]
  ): Promise<StateChange> => {
    // A patch is computed against the value, so the first change of a new handle reads it first (a handle made per
    // request, or on another instance, would otherwise patch `{}` and fail on a path the room has).
    let base = looked ? known : await fetch()
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const next = compute(base === undefined ? {} : base.value)
      if (check !== undefined && !check.check(next)) {
        throw new FST_REALTIME_INVALID_STATE(
          `state("${room}"): the value does not match its schema at ${check.explain(next)}; nothing changed`
        )
      }
      // The first version goes whole, so a client needs nothing before it.
      const ops = base === undefined ? [{ op: 'replace' as const, path: '', value: next }] : sent(base, next)
      if (base !== undefined && ops.length === 0) return { version: base.version, ops, event: undefined }
      const doc = {
        epoch: base?.epoch ?? randomBytes(6).toString('base64url'),
        version: (base?.version ?? 0) + 1,
        value: JSON.stringify(next)
      }
      const event = frames.statePatch(room, { version: doc.version, epoch: doc.epoch, ops })
      const policy = hub.policyOf(room)
      const position = await commit(room, { base, next: doc, event, ttl: ttl ?? policy.ttl }, policy).catch(failed)
      if (position !== undefined) {
        known = { epoch: doc.epoch, version: doc.version, value: next }
        return { version: doc.version, ops, event: { room, seq: position.seq, epoch: position.epoch } }
      }
      base = await fetch()
    }
    throw new FST_REALTIME_ADAPTER_FAILED(adapter.name, `state("${room}"): ${MAX_ATTEMPTS} changes in a row lost to other writers`)
  }

  return {
    room,
    get version() {
      return known?.version ?? 0
    },
    get: () => enqueue(async () => (await fetch())?.value as Static<S> | undefined),
    set(value) {
      const text = JSON.stringify(value)
      if (text === undefined)
        return Promise.reject(new FST_REALTIME_INVALID_STATE(`state("${room}"): set() needs a JSON value (got ${typeof value})`))
      return enqueue(() =>
        change(
          () => JSON.parse(text),
          (base, next) => diff(base.value, next)
        )
      )
    },
    patch(input) {
      if (!checkOps.check(input)) {
        return Promise.reject(
          new FST_REALTIME_INVALID_STATE(`state("${room}"): patch() needs RFC 6902 operations; ${checkOps.explain(input)}`)
        )
      }
      // A copy as JSON: what the subscribers apply is exactly what was applied here.
      const ops = JSON.parse(JSON.stringify(input)) as JsonPatchOperation[]
      return enqueue(() =>
        change(
          (current) => applyOps(room, current, ops),
          () => ops
        )
      )
    }
  }
}

/**
 * The JSON Patch from one value to the next. `compare` walks objects and arrays; a root that is neither, or that turns
 * from one into the other, is replaced whole (compare would turn an object's keys into an array's indexes).
 */
function diff(base: unknown, next: unknown): JsonPatchOperation[] {
  const container = (v: unknown): v is object => typeof v === 'object' && v !== null
  if (container(base) && container(next) && Array.isArray(base) === Array.isArray(next)) {
    return jsonpatch.compare(base, next) as JsonPatchOperation[]
  }
  return base === next ? [] : [{ op: 'replace', path: '', value: next }]
}

/**
 * The value after `ops`, leaving `current` as it was; a failing operation refuses the whole patch. Applied by the same
 * strict applier the client runs, so every patch committed is one each subscriber can apply (fast-json-patch, for one,
 * turns an `add` under a number or a string into a silent no-op).
 */
function applyOps(room: string, current: unknown, ops: JsonPatchOperation[]): unknown {
  let value = current
  for (const [index, op] of ops.entries()) {
    try {
      value = applyJsonPatch(value, [op])
    } catch (err) {
      throw new FST_REALTIME_INVALID_STATE(
        `state("${room}"): patch operation ${index} (${op.op} ${op.path}) failed: ${(err as Error).message}; nothing changed`
      )
    }
  }
  return value
}
