// The game-server side of a Kaiwa integration in TypeScript (Node 20+, no
// dependencies): mint a signed token, verify a webhook, answer the
// before-send hook, post system messages in batches.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");

/** A signed Kaiwa token: the tenant, a colon, and an HS256 JWT. */
export function mintToken(tenant: string, kid: string, secret: Buffer, user: string, name: string, jti: string, ttlSeconds: number): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid }));
  const claims = b64url(JSON.stringify({
    sub: user, name, jti,
    join: ["world", "guild."], publish: ["world", "guild.", "dm:"],
    iat: now, exp: now + ttlSeconds,
  }));
  const sig = b64url(createHmac("sha256", secret).update(`${header}.${claims}`).digest());
  return `${tenant}:${header}.${claims}.${sig}`;
}

/** Whether a delivery (or a before-send call) is Kaiwa's. */
export function verifyWebhook(secret: string, headers: Record<string, string | string[] | undefined>, body: Buffer): boolean {
  const ts = String(headers["kaiwa-timestamp"] ?? "");
  const sig = String(headers["kaiwa-signature"] ?? "");
  if (!/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const want = "v1=" + createHmac("sha256", secret).update(`${ts}.`).update(body).digest("hex");
  return want.length === sig.length && timingSafeEqual(Buffer.from(want), Buffer.from(sig));
}

/** Answers the before-send hook: no links, one word masked, the rest allowed. */
export function beforeSend(secret: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (!verifyWebhook(secret, req.headers, body)) {
        res.writeHead(401).end();
        return;
      }
      const msg = JSON.parse(body.toString("utf8")) as { ch: string; from: string; text: string };
      let answer: object = { action: "allow" };
      if (/https?:\/\//.test(msg.text)) answer = { action: "reject", reason: "links_not_allowed" };
      else if (msg.text.includes("noob")) answer = { action: "replace", text: "[friendly message]" };
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(answer));
    });
  };
}

/** One system message: to a channel (ch) or a player's inbox (user); its cid makes posting it again safe. */
export interface Post { ch?: string; user?: string; text?: string; data?: unknown; cid: string }

/** A post's outcome: its id and seq, or Kaiwa's error. */
export interface Posted { id?: string; seq?: number; ch?: string; error?: { code: string; message: string } }

/** Posts up to 100 system messages in one call, and posts again (twice at most) those Kaiwa could not confirm. */
export async function postMessages(api: string, key: string, posts: Post[]): Promise<Posted[]> {
  const out: Posted[] = new Array(posts.length);
  let todo = posts.map((_, i) => i);
  for (let attempt = 0; attempt < 3 && todo.length > 0; attempt++) {
    const res = await fetch(`${api}/messages/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ messages: todo.map((i) => posts[i]) }),
    });
    const answer = (await res.json()) as { results?: Posted[] };
    if (res.status !== 200 || answer.results?.length !== todo.length) throw new Error(`kaiwa: POST /messages/batch: HTTP ${res.status}`);
    const again: number[] = [];
    todo.forEach((i, j) => {
      out[i] = answer.results![j];
      if (out[i].error?.code === "unavailable") again.push(i);
    });
    todo = again;
  }
  return out;
}
