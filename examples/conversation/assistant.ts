/**
 * The simulated assistant: a fixed reply to any message, so a test knows the whole text it must end with. A real
 * app calls its model here and appends the tokens it yields.
 */
export function assistantReply(text: string): string {
  const quoted = text.length > 60 ? `${text.slice(0, 59)}…` : text
  return `You wrote "${quoted}". This reply is streamed to everyone in the conversation, one word at a time, as a model would produce it.`
}

/** The reply's tokens: each word with the space before it, so the tokens joined give the reply back. */
export function tokens(reply: string): string[] {
  return reply.match(/\s*\S+/g) ?? []
}
