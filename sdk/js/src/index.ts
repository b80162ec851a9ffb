/**
 * The Kaiwa chat client for browsers and Node (>= 20): one {@link Client}
 * with typed events and promise-returning requests. See README.md.
 *
 * @packageDocumentation
 */
export { Client, defaults, defaultConnectTimeoutMs } from "./client.js";
export type { SearchOptions } from "./client.js";
export { KaiwaError } from "./errors.js";
export type { ErrorCode, KaiwaErrorDetails } from "./errors.js";
export { newCID } from "./wire.js";
export type {
  Attachment,
  ClientEvents,
  ClientOptions,
  Edited,
  ConnectOptions,
  Deleted,
  Gap,
  HistoryOptions,
  HistoryPage,
  Joined,
  Left,
  Message,
  Presence,
  Quote,
  Reaction,
  ReactionChange,
  Read,
  Ready,
  RequestOptions,
  Resumed,
  SayOptions,
  SearchPage,
  Sent,
  SentDirect,
  State,
  Typing,
  Unread,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
