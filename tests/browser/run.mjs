// Runs one scenario of the browser agent demo (browser/demo/) in Debian's
// headless Chromium and prints its window.peerdResult as one `RESULT <json>`
// line. The Rust tests judge the result; this exits 1 only when the runner
// itself fails (no browser, no result in time).
//   node tests/browser/run.mjs --info URL --scenario NAME --target NODEID
//        [--param k=v ...] [--screenshot PATH.png] [--timeout-ms N]
// Needs scripts/browser-setup.sh to have run (node_modules and dist/).

import { createRequire } from "node:module";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const browserDir = join(root, "browser");
const CHROMIUM = "/usr/bin/chromium";

function fail(reason) {
  process.stderr.write(`run.mjs: ${reason}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { params: [], timeoutMs: 60_000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    switch (flag) {
      case "--info": opts.info = value; break;
      case "--scenario": opts.scenario = value; break;
      case "--target": opts.target = value; break;
      case "--screenshot": opts.screenshot = resolve(value); break;
      case "--timeout-ms": opts.timeoutMs = Number(value); break;
      case "--param": {
        const eq = value.indexOf("=");
        if (eq <= 0) fail(`--param wants k=v, not ${JSON.stringify(value)}`);
        opts.params.push([value.slice(0, eq), value.slice(eq + 1)]);
        break;
      }
      default: fail(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  for (const need of ["info", "scenario"]) if (!opts[need]) fail(`--${need} is required`);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) fail("--timeout-ms wants a positive number");
  return opts;
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

// Serves browser/ read-only; anything outside it, or of another type, is a 404.
function serve() {
  const server = createServer(async (req, res) => {
    const notFound = () => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    };
    try {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const file = resolve(browserDir, "." + path);
      const type = TYPES[extname(file)];
      if (req.method !== "GET" || !file.startsWith(browserDir + sep) || !type) return notFound();
      if (file.includes(`${sep}node_modules${sep}`) || !(await stat(file)).isFile()) return notFound();
      const body = await readFile(file);
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    } catch {
      notFound();
    }
  });
  return new Promise((ok, err) => {
    server.once("error", err);
    server.listen(0, "127.0.0.1", () => ok(server));
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const require = createRequire(join(browserDir, "package.json"));
  let chromium;
  try {
    ({ chromium } = require("playwright-core"));
  } catch (e) {
    fail(`cannot load playwright-core from browser/node_modules (run scripts/browser-setup.sh): ${e.message}`);
  }
  try {
    await stat(join(browserDir, "dist", "demo", "demo.js"));
  } catch {
    fail("browser/dist/demo/demo.js is missing (run scripts/browser-setup.sh)");
  }

  const server = await serve();
  const port = server.address().port;
  const profile = await mkdtemp(join(tmpdir(), "peerd-chromium-"));
  let context;
  const cleanup = async () => {
    await context?.close().catch(() => {});
    server.close();
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  };
  try {
    try {
      // A persistent context: playwright refuses --user-data-dir in args, and a fresh profile keeps runs apart.
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
        viewport: { width: 1000, height: 800 },
      });
    } catch (e) {
      throw new Error(`cannot launch ${CHROMIUM}: ${e.message}`);
    }
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => process.stderr.write(`page: ${m.type()}: ${m.text()}\n`));
    page.on("pageerror", (e) => process.stderr.write(`page: uncaught: ${e.message}\n`));

    const query = new URLSearchParams([
      ["info", opts.info],
      ["scenario", opts.scenario],
      ["target", opts.target ?? ""],
      ...opts.params,
    ]);
    const url = `http://127.0.0.1:${port}/demo/index.html?${query}`;
    await page.goto(url, { timeout: opts.timeoutMs });
    try {
      await page.waitForFunction(() => window.peerdResult !== undefined, null, { timeout: opts.timeoutMs, polling: 100 });
    } catch {
      if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true }).catch(() => {});
      throw new Error(`no result from the page within ${opts.timeoutMs} ms (${url})`);
    }
    const result = await page.evaluate(() => window.peerdResult);
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await cleanup();
  }
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
