// The Kaiwa demo page: the TypeScript SDK (./kaiwa/index.js, copied from
// its build) in a page with no framework. Connect with a user token, join
// channels, chat, see who is here, the round-trip time and the connection
// state; cut the network to watch the client reconnect and resume.

import { Client } from "./kaiwa/index.js";

const $ = (id) => document.getElementById(id);

/** @type {Client | undefined} */
let client;
/** channel name → { items: list entries, ids: message ids shown, here: user → name, unread } */
const channels = new Map();
let current;

$("url").value = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v2/ws`;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function channel(name) {
  let c = channels.get(name);
  if (!c) {
    c = { items: [], ids: new Set(), here: new Map(), unread: 0 };
    channels.set(name, c);
    if (!current) select(name);
    renderChannels();
  }
  return c;
}

function select(name) {
  current = name;
  const c = channels.get(name);
  if (c) c.unread = 0;
  $("current").textContent = name;
  renderChannels();
  renderLog();
  renderPresence();
  $("text").focus();
}

function renderChannels() {
  const ul = $("channels");
  ul.replaceChildren();
  for (const [name, c] of channels) {
    const li = document.createElement("li");
    li.dataset.channel = name;
    li.className = name === current ? "current" : "";
    li.append(name);
    if (c.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(c.unread);
      li.append(badge);
    }
    if (!name.startsWith("dm:") && !name.startsWith("@")) {
      const leave = document.createElement("button");
      leave.type = "button";
      leave.title = `leave ${name}`;
      leave.textContent = "×";
      leave.addEventListener("click", (ev) => {
        ev.stopPropagation();
        leaveChannel(name);
      });
      li.append(leave);
    }
    li.addEventListener("click", () => select(name));
    ul.append(li);
  }
}

function renderPresence() {
  const ul = $("presence");
  ul.replaceChildren();
  const c = current && channels.get(current);
  if (!c) return;
  for (const [user, name] of c.here) {
    const li = document.createElement("li");
    li.dataset.user = user;
    li.textContent = name && name !== user ? `${name} (${user})` : user;
    ul.append(li);
  }
  if (c.here.size === 0) {
    // Presence is events: who arrives after you, not who was there before.
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "who arrives from now on";
    ul.append(li);
  }
}

function renderLog() {
  const c = current && channels.get(current);
  $("log").replaceChildren(...(c ? c.items.map((it) => it.li) : []));
  $("log").scrollTop = $("log").scrollHeight;
}

/** Adds an entry to a channel's log: a message (by id, once) or a note. */
function add(name, li, id, older = false) {
  const c = channel(name);
  if (id) {
    if (c.ids.has(id)) return;
    c.ids.add(id);
  }
  const it = { li, id };
  if (older) c.items.unshift(it);
  else c.items.push(it);
  if (name === current) {
    if (older) $("log").prepend(li);
    else {
      $("log").append(li);
      $("log").scrollTop = $("log").scrollHeight;
    }
  } else if (id && !older) {
    c.unread++;
    renderChannels();
  }
}

function messageItem(m) {
  const li = document.createElement("li");
  li.dataset.id = m.id;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date(m.time).toLocaleTimeString();
  li.append(time);
  if (m.system) {
    li.className = "system";
    li.append(m.text);
  } else {
    const who = document.createElement("span");
    who.className = "name";
    who.textContent = m.name || m.user || "?";
    li.append(who, m.text);
  }
  if (m.data) li.title = JSON.stringify(m.data);
  return li;
}

function note(name, text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  add(name, li);
}

function setConnected(on) {
  for (const id of ["channel", "join", "text", "send", "disconnect"]) $(id).disabled = !on;
}

async function loadHistory(name) {
  try {
    const page = await client.history(name, { limit: 20 });
    for (const m of [...page.messages].reverse()) add(name, messageItem(m), m.id, true);
  } catch (e) {
    status(`history of ${name}: ${e.message}`, true);
  }
}

async function joinChannel(name) {
  try {
    await client.join(name);
    channel(name);
    select(name);
    status(`joined ${name}`);
    await loadHistory(name);
  } catch (e) {
    status(`join ${name}: ${e.code ?? ""} ${e.message}`, true);
  }
}

async function leaveChannel(name) {
  try {
    await client.leave(name);
  } catch (e) {
    status(`leave ${name}: ${e.message}`, true);
  }
  channels.delete(name);
  if (current === name) current = channels.keys().next().value;
  if (current) select(current);
  else {
    $("current").textContent = "Join a channel to chat";
    renderChannels();
    renderLog();
    renderPresence();
  }
}

function connect(url, token) {
  client?.close();
  channels.clear();
  current = undefined;
  renderChannels();
  renderLog();
  renderPresence();
  const c = new Client({ url, token });
  client = c;
  c.on("state", (s) => {
    $("state").textContent = s;
    $("state").className = `state ${s}`;
    setConnected(s === "connected");
    if (s === "reconnecting") for (const name of channels.keys()) note(name, "connection lost: reconnecting…");
  });
  c.on("ready", (r) => {
    $("me").textContent = `${r.name} (${r.user}) · ${r.version}`;
    for (const name of r.channels) channel(name);
    if (r.deprecated) status(`this protocol version is deprecated: update before ${r.deprecated.sunset}`, true);
  });
  c.on("message", (m) => add(m.channel, messageItem(m), m.id));
  c.on("presence", (p) => {
    const ch = channel(p.channel);
    if (p.event === "join") ch.here.set(p.user, p.name);
    else ch.here.delete(p.user);
    note(p.channel, `${p.name || p.user} ${p.event === "join" ? "joined" : "left"}`);
    if (p.channel === current) renderPresence();
  });
  c.on("resumed", (r) =>
    note(r.channel, r.recovered ? "back: every missed message is above" : "back: some earlier messages could not be recovered"),
  );
  c.on("gap", (g) => note(g.channel, `messages after #${g.after} are missing`));
  c.on("joined", (j) => note(j.channel, "you were added to this channel"));
  c.on("left", (l) => note(l.channel, `you are no longer in this channel (${l.reason})`));
  c.on("deleted", (d) => {
    const it = channels.get(d.channel)?.items.find((x) => x.id === d.id);
    if (it) it.li.textContent = "(deleted by a moderator)";
  });
  c.on("error", (e) => status(`${e.code}: ${e.message}`, true));
  status("connecting…");
  c.connect().then(
    () => status("connected"),
    (e) => status(`cannot connect: ${e.code ?? ""} ${e.message}`, true),
  );
}

$("connect-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  if (!token) {
    status("paste a user token first (POST /tokens on the tenant API)", true);
    return;
  }
  try {
    connect($("url").value.trim(), token);
  } catch (e) {
    status(e.message, true);
  }
});

$("disconnect").addEventListener("click", () => {
  client?.close();
  status("disconnected");
});

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = $("channel").value.trim();
  if (!name || !client) return;
  $("channel").value = "";
  joinChannel(name);
});

$("say-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || !client) return;
  const dm = /^\/dm\s+(\S+)\s+(.+)$/.exec(text);
  if (!dm && !current) {
    status("join a channel first", true);
    return;
  }
  input.value = "";
  try {
    if (dm) {
      const sent = await client.dm(dm[1], dm[2]);
      select(sent.channel);
    } else await client.say(current, text);
  } catch (e) {
    input.value ||= text;
    status(`${e.code}: ${e.message}`, true);
  }
});

setInterval(() => {
  const rtt = client?.rtt;
  $("rtt").textContent = rtt === undefined ? "RTT –" : `RTT ${Math.round(rtt)} ms`;
}, 500);
