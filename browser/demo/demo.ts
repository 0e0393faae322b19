// The demo page's scenarios. The browser tests run them headless and read
// window.peerdResult (the Rust side checks its field names); a person sees
// the same checks rendered with ✔/✘.

import { connect, decodeStringMessage, encodeStringMessage, PeerdError, type Agent } from "../src/peerd.js";

declare global {
  interface Window {
    peerdResult?: Record<string, unknown>;
  }
}

type Result = Record<string, unknown>;

const params = new URLSearchParams(location.search);
const info = params.get("info") ?? "";
const scenario = params.get("scenario") ?? "calls";
const target = params.get("target") ?? "";

const checks: { name: string; pass: boolean; value: string }[] = [];
function check(name: string, pass: boolean, value: unknown): void {
  checks.push({ name, pass, value: typeof value === "string" ? value : JSON.stringify(value) });
}

function text(id: string, value: string): void {
  const el = document.getElementById(id);
  if (el) el.textContent = value;
}

function showAgent(agent: Agent): void {
  text("page-id", agent.id);
  text("daemon-id", agent.host);
}

function errorResult(e: unknown, extra: Result = {}): Result {
  return { ok: false, ...extra, error: String(e), code: e instanceof PeerdError ? e.code : null };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// A macrotask without setTimeout's 4 ms clamp, so paced bursts stay fast.
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
function yieldTask(): Promise<void> {
  return new Promise((r) => {
    waiting.push(r);
    channel.port2.postMessage(null);
  });
}

// Waits for room in the datagram writer, but never past `ms` (a stuck writer must not hang the scenario).
async function datagramRoom(agent: Agent, ms: number): Promise<void> {
  if (!agent.datagramsFull) return;
  await Promise.race([agent.datagramsReady(), sleep(ms)]);
}

const enc = encodeStringMessage;
const dec = decodeStringMessage;

async function calls(): Promise<Result> {
  const agent = await connect({ info });
  showAgent(agent);
  try {
    agent.serveUnary("demo.Page/Greet", async (req) => enc("hello " + dec(req) + " from the page"));
    const say = dec(await agent.unary(target, "test.Native/Say", enc("ping")));
    check("unary test.Native/Say", say.length > 0, say);
    const count: string[] = [];
    for await (const m of agent.serverStreaming(target, "test.Native/Count", enc("5"))) count.push(dec(m));
    check("server streaming test.Native/Count (5)", count.length === 5, count);
    const callback = dec(await agent.unary(target, "test.Native/CallMeBack", enc("page")));
    check("the native node called the page back", callback.includes("from the page"), callback);
    const sum = dec(await agent.clientStreaming(target, "test.Native/Join", ["a", "b", "c"].map(enc)));
    check("client streaming test.Native/Join", sum === "abc", sum);
    const chat: string[] = [];
    for await (const m of agent.bidiStreaming(target, "test.Native/Shout", ["x", "y"].map(enc))) chat.push(dec(m));
    check("bidi streaming test.Native/Shout", chat.join() === "X,Y", chat);
    const deadline = await failure(() => agent.unary(target, "test.Native/Stall", enc(""), { timeoutMs: 300 }));
    check("a 300 ms deadline on test.Native/Stall", deadline.code === 4, deadline);
    const aborting = new AbortController();
    setTimeout(() => aborting.abort(), 300);
    const cancelled = await failure(() =>
      agent.unary(target, "test.Native/Stall", enc(""), { signal: aborting.signal }),
    );
    check("cancelling test.Native/Stall", cancelled.code === 1, cancelled);
    // The native node counts the Stall handlers that ended: the cancel must
    // reach it while this session is still open.
    const stallsEnded = dec(await agent.unary(target, "test.Native/StallsEnded", enc("")));
    check("the deadline and the cancel reached the native handler", stallsEnded === "2", stallsEnded);
    const missing = await failure(() => agent.unary(target, "test.Native/Nope", enc("")));
    check("an unknown method", missing.code === 12, missing);
    return { ok: true, id: agent.id, host: agent.host, say, count, callback, sum, chat, deadline, cancelled, stallsEnded, missing };
  } finally {
    agent.close();
  }
}

/** How a call failed: its code, its message and how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ code: number | null; message: string; ms: number }> {
  const started = performance.now();
  try {
    await call();
    return { code: 0, message: "it succeeded", ms: performance.now() - started };
  } catch (e) {
    const code = e instanceof PeerdError ? e.code : null;
    const message = e instanceof Error ? e.message : String(e);
    return { code, message, ms: Math.round(performance.now() - started) };
  }
}

// The by-hand demo (README): any node's built-in Echo, through the daemon.
// EchoRequest and EchoResponse carry their payload in field 1, as a string message does.
async function echo(): Promise<Result> {
  const agent = await connect({ info });
  showAgent(agent);
  try {
    const started = performance.now();
    const answer = dec(await agent.unary(target, "peerd.node.v1.Node/Echo", enc("hello from a page")));
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    check("peerd.node.v1.Node/Echo", answer === "hello from a page", `${answer} (${ms} ms)`);
    return { ok: true, id: agent.id, host: agent.host, echo: answer, ms };
  } finally {
    agent.close();
  }
}

// benches/browser.rs: 1 KiB Echo calls to the target one at a time, for
// `seconds`; the page times each.
async function bench(): Promise<Result> {
  const seconds = Number(params.get("seconds") ?? 3);
  const agent = await connect({ info });
  showAgent(agent);
  try {
    const request = enc("x".repeat(1024));
    const times: number[] = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const started = performance.now();
      await agent.unary(target, "peerd.node.v1.Node/Echo", request);
      times.push(performance.now() - started);
    }
    const total = times.reduce((a, b) => a + b, 0);
    const sorted = [...times].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    const callsPerSecond = (times.length * 1000) / total;
    check("calls", times.length > 0, `${times.length} in ${seconds} s, ${Math.round(callsPerSecond)}/s`);
    return { ok: true, calls: times.length, callsPerSecond, p50Ms: at(0.5), p99Ms: at(0.99) };
  } finally {
    agent.close();
  }
}

async function forged(): Promise<Result> {
  const other = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const claimed = new Uint8Array(await crypto.subtle.exportKey("raw", other.publicKey));
  let agent: Agent;
  try {
    agent = await connect({ info, forge: { nodeId: claimed } });
  } catch (e) {
    const refused = e instanceof PeerdError && (e.code === 16 || e.code === 7);
    check("the daemon refused the forged proof", refused, String(e));
    return errorResult(e, { stage: "connect" });
  }
  showAgent(agent);
  try {
    await agent.unary(target, "test.Native/Say", enc("ping"));
    check("the daemon refused the forged proof", false, "accepted, and a call went through");
    return { ok: true };
  } catch (e) {
    check("the daemon refused the forged proof", true, `accepted, then the call failed: ${String(e)}`);
    return errorResult(e, { stage: "call" });
  } finally {
    agent.close();
  }
}

async function rotation(): Promise<Result> {
  const seconds = Number(params.get("seconds") ?? 6);
  const end = Date.now() + seconds * 1000;
  let connects = 0;
  let failures = 0;
  const hashes = new Set<string>();
  const errors: string[] = [];
  while (Date.now() < end) {
    let agent: Agent | undefined;
    try {
      agent = await connect({ info });
      showAgent(agent);
      hashes.add(agent.certificateHash);
      await agent.unary(target, "test.Native/Say", enc("ping"), { timeoutMs: 5000 });
      connects++;
    } catch (e) {
      failures++;
      if (errors.length < 5) errors.push(String(e));
    } finally {
      agent?.close();
    }
    await sleep(200);
  }
  check("connects", connects > 0, connects);
  check("failures", failures === 0, failures);
  check("distinct certificate hashes seen", hashes.size > 0, [...hashes]);
  return { ok: true, connects, failures, hashes: [...hashes], errors };
}

async function datagrams(): Promise<Result> {
  const count = Number(params.get("count") ?? 10000);
  const service = "test.Native.Datagrams";
  const agent = await connect({ info, datagramServices: ["demo.Page.Datagrams"] });
  showAgent(agent);
  try {
    const seen = new Set<number>();
    let lastEcho = Date.now();
    agent.onDatagram("demo.Page.Datagrams", (_from, msg) => {
      if (msg.length < 4) return;
      seen.add(new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0));
      lastEcho = Date.now();
    });
    for (let seq = 0; seq < count; seq++) {
      const msg = new Uint8Array(64);
      new DataView(msg.buffer).setUint32(0, seq);
      await datagramRoom(agent, 1000);
      agent.sendDatagram(target, service, msg);
      if (seq % 100 === 99) await yieldTask();
    }
    const { sent, dropped: localDropped } = agent.datagramStats();
    // Echoes trail the sends; stop once all are back, or they pause for 1 s, or 3 s pass.
    const doneSending = Date.now();
    lastEcho = Math.max(lastEcho, doneSending);
    while (seen.size < sent && Date.now() - doneSending < 3000 && Date.now() - lastEcho < 1000) await sleep(50);
    const received = seen.size;

    const max = agent.maxDatagramSize;
    let oversize = "";
    try {
      agent.sendDatagram(target, service, new Uint8Array(max + 1 - 32 - 1 - service.length));
    } catch (e) {
      oversize = e instanceof Error ? e.message : String(e);
    }
    check("datagrams sent", sent > 0, `${sent} of ${count} (${localDropped} dropped locally)`);
    check("datagrams echoed back", received > 0, `${received} distinct (${sent - received} lost)`);
    check("an oversize datagram is refused", oversize.length > 0, oversize);
    return { ok: true, sent, received, dropped: sent - received, localDropped, oversize, maxDatagramSize: max };
  } finally {
    agent.close();
  }
}

async function flood(): Promise<Result> {
  const seconds = Number(params.get("seconds") ?? 3);
  const agent = await connect({ info });
  showAgent(agent);
  try {
    const end = Date.now() + seconds * 1000;
    const msg = new Uint8Array(64);
    let i = 0;
    while (Date.now() < end) {
      await datagramRoom(agent, 100);
      agent.sendDatagram(target, "test.Native.Flood", msg);
      if (++i % 100 === 0) await yieldTask();
    }
    const { sent, dropped } = agent.datagramStats();
    check("datagrams flooded", sent > 0, `${sent} in ${seconds} s (${dropped} dropped locally)`);
    return { ok: true, sent, localDropped: dropped };
  } finally {
    agent.close();
  }
}

const scenarios: Record<string, () => Promise<Result>> = { echo, calls, forged, rotation, datagrams, flood, bench };

function render(result: Result): void {
  if (result.ok === false && (scenario !== "forged" || !checks.length)) check("scenario", false, String(result.error));
  // A forged proof passes when refused, so its result says ok:false; its check decides.
  const pass = (scenario === "forged" || result.ok === true) && checks.length > 0 && checks.every((c) => c.pass);
  const summary = document.getElementById("summary")!;
  summary.className = pass ? "ok" : "fail";
  summary.textContent = `${pass ? "✔" : "✘"} ${scenario}: ${pass ? "passed" : "failed"}`;
  const list = document.getElementById("checks")!;
  for (const c of checks) {
    const li = document.createElement("li");
    li.className = c.pass ? "pass" : "fail";
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = c.pass ? "✔" : "✘";
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = c.value;
    li.append(mark, `${c.name}: `, value);
    list.append(li);
  }
  text("result", JSON.stringify(result, null, 2));
}

async function main(): Promise<void> {
  text("scenario", scenario);
  text("target-id", target || "–");
  let result: Result;
  const run = scenarios[scenario];
  if (!info) {
    (document.getElementById("form") as HTMLFormElement).hidden = false;
    result = { ok: false, error: "no info URL: open this page with ?info=…&scenario=…&target=…", code: null };
  } else if (!run) {
    result = { ok: false, error: `unknown scenario ${JSON.stringify(scenario)}`, code: null };
  } else {
    try {
      result = await run();
    } catch (e) {
      result = errorResult(e);
    }
  }
  render(result);
  console.log(`peerd demo ${scenario}: ${JSON.stringify(result)}`);
  window.peerdResult = result;
}

void main();
