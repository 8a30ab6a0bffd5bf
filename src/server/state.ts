/**
 * The fields of a room's shared state (`Adapter.stateRead`), which the agent features keep there: open token streams
 * and pending questions (listed in `subscribed`), settled questions and idempotency keys (for `ask()`). Values are JSON.
 */
export const StateField = {
  /** An open token stream: its `StreamState`. */
  stream: (id: string): string => `s:${id}`,
  /** A question waiting for its first answer: its `QuestionState`. */
  question: (id: string): string => `q:${id}`,
  /** A settled question: how (`{ status, data?, error?, by? }`). */
  settled: (id: string): string => `a:${id}`,
  /** An idempotency key of `ask()`: the id of its question. */
  key: (key: string): string => `k:${key}`,
  /** An AG-UI run's claim, in its log room: the first request to start the run holds it, on every instance. */
  runClaim: 'r:claim'
} as const

interface Listed {
  readonly ts: string
}

const byTime = (a: Listed, b: Listed): number => a.ts.localeCompare(b.ts)

/** The room's open streams and pending questions, oldest first, as `subscribed` lists them; nothing when it has none. */
export function openItems(state: Readonly<Record<string, string>>): { streams?: Listed[]; questions?: Listed[] } {
  const streams: Listed[] = []
  const questions: Listed[] = []
  for (const [field, value] of Object.entries(state)) {
    if (field.startsWith('s:')) streams.push(JSON.parse(value) as Listed)
    else if (field.startsWith('q:')) questions.push(JSON.parse(value) as Listed)
  }
  const items: { streams?: Listed[]; questions?: Listed[] } = {}
  if (streams.length > 0) items.streams = streams.sort(byTime)
  if (questions.length > 0) items.questions = questions.sort(byTime)
  return items
}
