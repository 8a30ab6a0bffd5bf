import type { Counter, Histogram, Registry } from 'prom-client'
import { FST_REALTIME_INVALID_OPTION } from '../errors.js'
import type { MetricsRegistry, MetricsSettings } from '../options.js'
import type { RealtimeStats } from '../types.js'

export type { MetricsSettings } from '../options.js'

/** What the plugin reports. Each method is called once per event, never once per recipient. */
export interface Metrics {
  readonly registry: MetricsRegistry
  received(type: string): void
  sent(type: string, count: number): void
  error(code: string): void
  authFailure(reason: string): void
  closed(code: number): void
  /** One emit written to `recipients` local connections, `ageMs` after it was stamped. */
  delivered(recipients: number, ageMs: number): void
}

const FANOUT_BUCKETS = [0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10_000]
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/**
 * Registers the plugin's metrics with prom-client (loaded only when metrics are on: it is an optional peer
 * dependency). Gauges read the hub's own figures when scraped, so nothing is kept twice.
 */
export async function createMetrics(
  settings: MetricsSettings,
  stats: () => RealtimeStats,
  load: () => Promise<typeof import('prom-client')> = () => import('prom-client')
): Promise<Metrics> {
  let prom: typeof import('prom-client')
  try {
    prom = await load()
  } catch (err) {
    throw new FST_REALTIME_INVALID_OPTION('option "metrics" needs prom-client: npm install prom-client', { cause: err })
  }
  const registry = (settings.registry as Registry | undefined) ?? new prom.Registry()
  const registers = [registry]
  const name = (n: string) => `${settings.prefix}${n}`
  const gauge = (n: string, help: string, read: (s: RealtimeStats) => number) =>
    new prom.Gauge({
      name: name(n),
      help,
      registers,
      collect() {
        this.set(read(stats()))
      }
    })
  gauge('connections', 'Open connections on this instance (every transport).', (s) => s.connections)
  const byTransport = new prom.Gauge({
    name: name('connections_by_transport'),
    help: 'Open connections on this instance, by transport (websocket, sse).',
    labelNames: ['transport'],
    registers,
    collect() {
      const s = stats()
      const counts = s.transports ?? { websocket: s.connections, sse: 0 }
      this.set({ transport: 'websocket' }, counts.websocket)
      this.set({ transport: 'sse' }, counts.sse)
    }
  })
  void byTransport
  gauge('subscriptions', 'Room subscriptions held by connections on this instance.', (s) => s.subscriptions)
  gauge('rooms', 'Rooms with at least one subscriber on this instance.', (s) => s.rooms)
  gauge('pending_requests', 'Server requests waiting for a reply.', (s) => s.pendingRequests)
  gauge('dropped_volatile', 'Volatile events not written to a connection that was behind (since start).', (s) => s.dropped)
  const counter = (n: string, help: string, label: string): Counter<string> =>
    new prom.Counter({ name: name(n), help, labelNames: [label], registers })
  const received = counter('messages_received_total', 'Client messages received, by type.', 'type')
  const sent = counter('messages_sent_total', 'Messages written to connections, by type.', 'type')
  const errors = counter('errors_total', 'Error replies sent to clients, by code.', 'code')
  const authFailures = counter('auth_failures_total', 'Upgrades refused before the WebSocket opened, by reason.', 'reason')
  const closes = counter('closes_total', 'Connections closed, by WebSocket close code.', 'code')
  const fanout: Histogram = new prom.Histogram({
    name: name('fanout_recipients'),
    help: 'Local connections one event was written to.',
    buckets: FANOUT_BUCKETS,
    registers
  })
  const latency: Histogram = new prom.Histogram({
    name: name('emit_to_write_seconds'),
    help: 'From emit() (the event ts, millisecond resolution) to the write to the sockets on this instance.',
    buckets: LATENCY_BUCKETS,
    registers
  })
  return {
    registry,
    received: (type) => received.inc({ type }),
    sent: (type, count) => sent.inc({ type }, count),
    error: (code) => errors.inc({ code }),
    authFailure: (reason) => authFailures.inc({ reason }),
    closed: (code) => closes.inc({ code: String(code) }),
    delivered(recipients, ageMs) {
      fanout.observe(recipients)
      // A frame without a readable ts (from a foreign publisher) is left out of the latency.
      if (ageMs >= 0) latency.observe(ageMs / 1000)
    }
  }
}

const TYPE_AT = Buffer.byteLength('{"type":"')
const QUOTE = 0x22
/** `,"ts":"<24 characters>"}` ends every event frame. */
const TS_FROM_END = Buffer.byteLength('2026-01-01T00:00:00.000Z"}')

/** The type of an event frame, read from its first field (every frame starts `{"type":"`). */
export function frameType(frame: Buffer): string {
  const end = frame.indexOf(QUOTE, TYPE_AT)
  return frame.toString('utf8', TYPE_AT, end)
}

/** Milliseconds since the event frame's `ts`; NaN when the frame does not end with one. */
export function frameAge(frame: Buffer, now: number): number {
  return now - Date.parse(frame.toString('latin1', frame.length - TS_FROM_END, frame.length - 2))
}
