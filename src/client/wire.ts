import type { ClientType, ErrorCodeName, ServerType } from '../protocol/constants.js'

/**
 * The protocol's names as literal types. The client writes control types and error codes as string literals checked
 * against these (`'reply' satisfies ClientTypeName`), so a typo fails to compile and the browser bundle carries no
 * lookup objects.
 */
export type ClientTypeName = (typeof ClientType)[keyof typeof ClientType]
export type ServerTypeName = (typeof ServerType)[keyof typeof ServerType]
export type { ErrorCodeName }
