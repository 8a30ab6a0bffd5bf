// One adapter for every test of what the server does when its adapter misbehaves: it wraps the in-memory adapter and
// can fail any call, swallow publications before they reach the hub, hand the hub publications of its own, and hold
// or slow history reads. Tests drive it with explicit switches, so a fault starts and ends where the test says.
import { setTimeout as delay } from 'node:timers/promises'
import type { Adapter, AdapterHandler, Publication } from '../../src/adapters/adapter.js'
import { memoryAdapter } from '../../src/adapters/memory.js'

/** The adapter calls a test can make fail. */
export type AdapterCall = Exclude<keyof Adapter, 'name' | 'init' | 'close'>

export interface Fault<C extends AdapterCall = AdapterCall> {
  /** The message of the error the call rejects with; `"<call> is down"` unless given. */
  message?: string
  /** Fails only the calls this accepts (all of them unless given). */
  when?: (...args: Parameters<Adapter[C]>) => boolean
}

export interface FaultyAdapter extends Adapter {
  /** Publications to swallow before they reach the hub, counted down as they arrive. */
  drop: number
  /** Delays every history read by this many ms. */
  slowHistory: number
  /** Makes `call` reject from now on (only the calls `fault.when` accepts, when given). */
  fail<C extends AdapterCall>(call: C, fault?: Fault<C>): void
  /** Ends every fault. */
  heal(): void
  /** Holds every history read from now until `release()`; `waiting` counts the reads held. */
  holdHistory(): { readonly waiting: number; release(): void }
  /** Hands the hub a publication directly, as a broker would. */
  inject(pub: Publication): void
  /** The handler the hub gave at init. */
  hub(): AdapterHandler
}

export function faultyAdapter(): FaultyAdapter {
  const inner = memoryAdapter()
  let hub: AdapterHandler | undefined
  let held: { gate: Promise<void>; hold: { waiting: number } } | undefined
  const faults = new Map<AdapterCall, Fault>()
  // Each call goes to the memory adapter unless a fault covers it; the checks run when the call is made.
  const guarded =
    <C extends AdapterCall>(call: C) =>
    (...args: Parameters<Adapter[C]>): ReturnType<Adapter[C]> => {
      const fault = faults.get(call) as Fault<C> | undefined
      if (fault !== undefined && (fault.when === undefined || fault.when(...args))) {
        return Promise.reject(new Error(fault.message ?? `${call} is down`)) as ReturnType<Adapter[C]>
      }
      return (inner[call] as (...a: Parameters<Adapter[C]>) => ReturnType<Adapter[C]>)(...args)
    }
  const history = guarded('history')
  const self: FaultyAdapter = {
    name: 'faulty',
    drop: 0,
    slowHistory: 0,
    fail: (call, fault = {}) => {
      faults.set(call, fault as Fault)
    },
    heal: () => faults.clear(),
    holdHistory: () => {
      let open = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const hold = {
        waiting: 0,
        release: () => {
          held = undefined
          open()
        }
      }
      held = { gate, hold }
      return hold
    },
    inject: (pub) => hub?.publication(pub),
    hub: () => hub as AdapterHandler,
    init: (h, log) => {
      hub = h
      return inner.init(
        {
          publication: (pub) => {
            if (self.drop > 0) self.drop--
            else h.publication(pub)
          },
          resync: () => h.resync()
        },
        log
      )
    },
    publish: guarded('publish'),
    subscribe: guarded('subscribe'),
    unsubscribe: guarded('unsubscribe'),
    history: async (...a) => {
      if (self.slowHistory > 0) await delay(self.slowHistory)
      if (held !== undefined) {
        held.hold.waiting++
        await held.gate
      }
      return history(...a)
    },
    presenceAdd: guarded('presenceAdd'),
    presenceRemove: guarded('presenceRemove'),
    presenceRefresh: guarded('presenceRefresh'),
    presenceList: guarded('presenceList'),
    stateRead: guarded('stateRead'),
    stateWrite: guarded('stateWrite'),
    stateClaim: guarded('stateClaim'),
    stateTake: guarded('stateTake'),
    close: () => inner.close?.() as Promise<void>
  }
  return self
}
