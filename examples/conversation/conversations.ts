import { randomBytes } from 'node:crypto'

/** A message as the store keeps it and the page draws it: a person's, or the assistant's once its stream ended. */
export interface StoredMessage {
  id: string
  author: string
  text: string
  ts: string
}

export interface Conversation {
  id: string
  title: string
  owner: string
  /** Users the owner let in besides themselves. */
  sharedWith: string[]
  messages: StoredMessage[]
}

/** The room of a conversation, and back. */
export const conversationRoom = (id: string): string => `conv:${id}`
const ROOM = /^conv:([0-9a-f]{8})$/

/**
 * The conversations, in memory: a restart forgets them. Who may see one is decided here, in `canAccess`, and only
 * here: the WebSocket's `authorize`, the message handler and the HTTP routes all ask it.
 */
export class Conversations {
  readonly #byId = new Map<string, Conversation>()

  create(owner: string, title: string): Conversation {
    const conversation = { id: randomBytes(4).toString('hex'), title, owner, sharedWith: [], messages: [] }
    this.#byId.set(conversation.id, conversation)
    return conversation
  }

  get(id: string): Conversation | undefined {
    return this.#byId.get(id)
  }

  /** The conversation of a `conv:<id>` room, if the room names one. */
  ofRoom(room: string): Conversation | undefined {
    const id = ROOM.exec(room)?.[1]
    return id === undefined ? undefined : this.#byId.get(id)
  }

  canAccess(user: string, conversation: Conversation | undefined): conversation is Conversation {
    return conversation !== undefined && (conversation.owner === user || conversation.sharedWith.includes(user))
  }

  /** The user's conversations, their own and those shared with them, newest first. */
  listFor(user: string): Conversation[] {
    return [...this.#byId.values()].filter((c) => this.canAccess(user, c)).reverse()
  }

  share(conversation: Conversation, user: string): void {
    if (user !== conversation.owner && !conversation.sharedWith.includes(user)) conversation.sharedWith.push(user)
  }
}

/** What a list or a page shows of a conversation: everything but its messages. */
export function summary({ id, title, owner, sharedWith }: Conversation) {
  return { id, title, owner, sharedWith }
}
