// The part of tap the README's test snippet uses: tap's own declarations are large and not what is under test.
interface Test {
  test(name: string, fn: (t: Test) => Promise<void>): Promise<void>
  teardown(fn: () => unknown): void
  ok(value: unknown, message?: string): boolean
  same(found: unknown, wanted: unknown, message?: string): boolean
  equal(found: unknown, wanted: unknown, message?: string): boolean
}
declare const t: Test
export default t
