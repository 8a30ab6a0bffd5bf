/**
 * The default `limits.roomPattern`: letters and digits of any script, spaces, and the punctuation identity providers
 * put in subjects and emails (`auth0|5f7c…`, `google-oauth2|1234…`, `a+b@example.com`, `Jörg Müller`). It leaves out
 * control characters (the internal control room starts with NUL), quotes and backslashes, and `{}[]*?`: braces are the
 * Redis adapter's hash-tag delimiters and the rest are glob characters of Redis channel patterns.
 */
export const DEFAULT_ROOM_PATTERN = /^[\p{L}\p{M}\p{N} :_\-.@/|+=~,;!$&'()%#^]+$/u

/** The longest room name by default (`limits.roomNameMaxLength`). */
export const DEFAULT_ROOM_NAME_MAX_LENGTH = 255

/** Marks an encoded subject in a user's own room: `user:~<base64url of the subject's UTF-8>`. */
const ENCODED = '~'

function base64url(text: string): string {
  let binary = ''
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * A user's own room, for any subject a verified token can carry: `user:<sub>` when that is a valid room name under
 * the default limits and `sub` does not start with `~`; otherwise `user:~` followed by the base64url (no padding) of
 * the subject's UTF-8 bytes, which the default pattern always accepts. Two subjects never share a room.
 */
export function userRoom(sub: string): string {
  const plain = `user:${sub}`
  if (sub !== '' && !sub.startsWith(ENCODED) && plain.length <= DEFAULT_ROOM_NAME_MAX_LENGTH && DEFAULT_ROOM_PATTERN.test(sub)) {
    return plain
  }
  return `user:${ENCODED}${base64url(sub)}`
}
