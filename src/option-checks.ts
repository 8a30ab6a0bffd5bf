// The checks every option goes through: each error names the option, what it must be and what it got.
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { MAX_TIMER } from './protocol/deadline.js'

export function fail(option: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
  throw new FST_REALTIME_INVALID_OPTION(`option "${option}" must be ${expected} (got ${got})`)
}

/** A duration in ms that a timer can hold: 1 to 2^31 − 1 (about 24.8 days). */
export function duration(option: string, value: unknown, fallback: number): number {
  const ms = positiveInt(option, value, fallback)
  if (ms > MAX_TIMER) fail(option, `at most ${MAX_TIMER} ms`, value)
  return ms
}

export function positiveInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail(option, 'a positive integer', value)
  return value
}

export function nonNegativeInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(option, 'a non-negative integer', value)
  return value
}

export function boolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(option, 'a boolean', value)
  return value
}

export function plainObject(option: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(option, 'an object', value)
  return value as Record<string, unknown>
}
