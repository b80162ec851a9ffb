/**
 * The Kaiwa chat client for browsers and Node (>= 20): one {@link Client}
 * with typed events and promise-returning requests. See README.md.
 *
 * @packageDocumentation
 */
export { Client, defaults, defaultConnectTimeoutMs } from "./client.js";
export { KaiwaError } from "./errors.js";
export type { ErrorCode, KaiwaErrorDetails } from "./errors.js";
export { newCID } from "./wire.js";
export type {
  ClientEvents,
  ClientOptions,
  ConnectOptions,
  Deleted,
  Gap,
  HistoryOptions,
  HistoryPage,
  Joined,
  Left,
  Message,
  Presence,
  Ready,
  RequestOptions,
  Resumed,
  SayOptions,
  Sent,
  SentDirect,
  State,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
