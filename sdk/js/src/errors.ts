/**
 * The error codes of the Kaiwa protocol (docs/protocol.md §8), as the server
 * sends them, and the few this client adds:
 *
 * - `timeout`: a request or the first connect took longer than allowed;
 * - `closed`: the client was closed (by {@link Client.close} or because the
 *   server refused it for good) before the request was answered;
 * - `bad_frame`: the server sent something this client cannot read (the
 *   connection goes on).
 *
 * New server codes may appear; handle an unknown one like `internal`.
 */
export type ErrorCode =
  | "bad_request"
  | "unknown_op"
  | "unauthorized"
  | "token_expired"
  | "forbidden"
  | "not_found"
  | "not_joined"
  | "ng_word"
  | "rate_limited"
  | "too_large"
  | "muted"
  | "banned"
  | "version_not_allowed"
  | "unavailable"
  | "internal"
  | "blocked"
  | "rejected"
  | "timeout"
  | "closed"
  | "bad_frame"
  | (string & {});

/** Extra facts a {@link KaiwaError} may carry. */
export interface KaiwaErrorDetails {
  /** The WebSocket close code, when the error ended a connection (4001, 4003, ...). */
  closeCode?: number;
  /** The channel the error is about, when there is one (a failed rejoin or resume). */
  channel?: string;
  /** The client message id of a send whose outcome is unknown (`unavailable`). */
  cid?: string;
  /** What caused it: an earlier error, a thrown value of `getToken`. */
  cause?: unknown;
}

/**
 * KaiwaError is every error this client reports, through rejected promises
 * and the `error` event. {@link KaiwaError.code} is stable: program against
 * it; the message is for developers' logs.
 */
export class KaiwaError extends Error {
  /** The server's error code, or one of the client's (see {@link ErrorCode}). */
  readonly code: ErrorCode;
  /** The WebSocket close code, when the error ended a connection. */
  readonly closeCode?: number;
  /** The channel the error is about, when there is one. */
  readonly channel?: string;
  /** The client message id of a send whose outcome is unknown. */
  readonly cid?: string;

  constructor(code: ErrorCode, message: string, details: KaiwaErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "KaiwaError";
    this.code = code;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
    if (details.channel !== undefined) this.channel = details.channel;
    if (details.cid !== undefined) this.cid = details.cid;
  }
}

/**
 * Codes after which no new connection can succeed with the same token and
 * URL. `unauthorized` and `token_expired` are retried once a `getToken` hook
 * gives a new token.
 */
export const refusedCodes: ReadonlySet<string> = new Set([
  "banned",
  "forbidden",
  "version_not_allowed",
  "bad_request",
  "not_found",
]);

/** Codes that a new token can cure. */
export const tokenCodes: ReadonlySet<string> = new Set(["unauthorized", "token_expired"]);
