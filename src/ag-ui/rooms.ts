/** The room viewers subscribe to for a thread's runs. */
export const aguiRoom = (threadId: string): string => `agui:${threadId}`

/** The room that logs one run's events, every delta included: what re-attach replays, and what `RealtimeAgent` reads. */
export const aguiLogRoom = (threadId: string, runId: string): string => `agui:${threadId}:${runId}`
