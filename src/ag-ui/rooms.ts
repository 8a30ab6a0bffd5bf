/** The room viewers subscribe to for a thread's runs. */
export const aguiRoom = (threadId: string): string => `agui:${threadId}`

/** The room that logs one run's events, every delta included: what re-attach replays, and what `RealtimeAgent` reads. */
export const aguiLogRoom = (threadId: string, runId: string): string => `agui:${threadId}:${runId}`

/**
 * The state room of a thread (`run.state`): its value whole at subscribe, then each change as a JSON Patch. A prefix
 * of its own, so no thread or run id can name it.
 */
export const aguiStateRoom = (threadId: string): string => `agui-state:${threadId}`
