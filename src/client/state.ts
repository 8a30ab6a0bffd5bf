import { applyJsonPatch } from '../protocol/json-patch.js'
import type { JsonPatchOperation, StateSnapshot } from '../protocol/messages.js'

/** Called with a state room's value: a new object on every change, and the patch that made it (none for a whole value). */
export type StateListener<T = unknown> = (value: T | undefined, ops: readonly JsonPatchOperation[] | undefined) => void

interface Held {
  readonly epoch: string
  readonly version: number
  readonly value: unknown
}

/**
 * The client's copy of each state room it holds (`app.realtime.state()` on the server). The value comes whole with
 * `subscribed`, then as JSON Patches (`state_patch`) that apply to exactly one version: an older patch is one the
 * client has already, and any other one means the client missed something, so `patch()` says so and the client asks
 * for a fresh `subscribed`. The client never holds a wrong value silently.
 */
export class StateRooms {
  private readonly held = new Map<string, Held>()
  private readonly listeners = new Map<string, Set<StateListener>>()

  constructor(private readonly call: (listener: StateListener, value: unknown, ops: readonly JsonPatchOperation[] | undefined) => void) {}

  value(room: string): { value: unknown; version: number } | undefined {
    return this.held.get(room)
  }

  /** `subscribed.data.state`: the value as it stands (absent when the room has no state). */
  snapshot(room: string, state: StateSnapshot | undefined): void {
    const was = this.held.get(room)
    if (state === undefined) {
      if (was === undefined) return
      this.held.delete(room)
      this.changed(room, undefined, undefined)
      return
    }
    if (was?.epoch === state.epoch && was.version === state.version) return
    this.held.set(room, { epoch: state.epoch, version: state.version, value: state.value })
    this.changed(room, state.value, undefined)
  }

  /** A `state_patch`. Returns false when it does not follow the version held: the caller asks for the value again. */
  patch(room: string, data: { version: number; epoch: string; ops: JsonPatchOperation[] }): boolean {
    const was = this.held.get(room)
    if (was?.epoch === data.epoch && data.version <= was.version) return true
    // Version 1 is a whole value; any other applies only on top of the version before it.
    const follows = data.version === 1 || (was?.epoch === data.epoch && data.version === was.version + 1)
    if (!follows) return false
    let value: unknown
    // Validated: an operation that does not fit the value held means the two have parted; never apply it halfway.
    try {
      value = applyJsonPatch(data.version === 1 ? null : was?.value, data.ops)
    } catch {
      return false
    }
    this.held.set(room, { epoch: data.epoch, version: data.version, value })
    this.changed(room, value, data.ops)
    return true
  }

  /**
   * Adds a listener of the room, called at once when a value is held. Returns a function that removes it and tells
   * whether the room still has other listeners.
   */
  watch(room: string, listener: StateListener): () => boolean {
    let set = this.listeners.get(room)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(room, set)
    }
    set.add(listener)
    const held = this.held.get(room)
    if (held !== undefined) this.call(listener, held.value, undefined)
    return () => {
      const own = this.listeners.get(room)
      own?.delete(listener)
      if (own?.size !== 0) return true
      this.listeners.delete(room)
      return false
    }
  }

  private changed(room: string, value: unknown, ops: readonly JsonPatchOperation[] | undefined): void {
    for (const listener of this.listeners.get(room) ?? []) this.call(listener, value, ops)
  }
}
