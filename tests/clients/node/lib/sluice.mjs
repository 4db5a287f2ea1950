// Starts and stops a sluice server for one test file.
//
//   const server = await startSluice();   // { endpoint, port, host, stop(), logs() }
//   ...
//   await server.stop();
//
// SLUICE_BIN           server binary (default <repo>/target/debug/sluice)
// SLUICE_NODE_ENGINE   memory (default: `--in-memory`) | durable (`--data-dir <tmp>`)
// SLUICE_ENDPOINT      http://127.0.0.1:PORT: use an already running server instead
//                      (nothing is started or stopped)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..', '..');
export const REGION = 'us-east-1';
export const ACCOUNT_ID = '000000000000';

const HEALTH_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// GET /health -> status code, or null if nothing answered (1 s budget).
// Plain node:http: no proxy is ever consulted for it.
function healthStatus(host, port) {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/health', timeout: 1000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startSluice() {
  const external = process.env.SLUICE_ENDPOINT;
  if (external) {
    const u = new URL(external);
    return {
      endpoint: u.origin,
      host: u.hostname,
      port: Number(u.port),
      external: true,
      logs: () => '(external server)',
      stop: async () => {},
    };
  }

  let bin = process.env.SLUICE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'sluice');
  if (!path.isAbsolute(bin)) bin = path.join(REPO_ROOT, bin);
  if (!existsSync(bin)) {
    throw new Error(`sluice binary not found at ${bin} (build it with \`cargo build -p sluice\` or set SLUICE_BIN)`);
  }

  const host = '127.0.0.1';
  const port = await freePort();
  const endpoint = `http://${host}:${port}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-node-'));
  const outPath = path.join(dir, 'server.log');
  const engine = (process.env.SLUICE_NODE_ENGINE || 'memory') === 'durable'
    ? ['--data-dir', path.join(dir, 'data')]
    : ['--in-memory'];
  const args = ['serve', '--listen', `${host}:${port}`, ...engine, '--region', REGION, '--account-id', ACCOUNT_ID];
  const fd = openSync(outPath, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    child.on('error', (err) => { exited = { code: null, signal: null, error: err }; resolve(exited); });
  });

  const logs = () => {
    try { return readFileSync(outPath, 'utf8').slice(-8000); } catch { return ''; }
  };
  const describeCmd = `${bin} ${args.join(' ')}`;

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      throw new Error(`sluice exited (${JSON.stringify(exited)}) before becoming healthy; cmd=${describeCmd}\n--- server output ---\n${logs()}`);
    }
    if ((await healthStatus(host, port)) === 200) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exitPromise;
      throw new Error(`sluice did not answer GET /health with 200 within ${HEALTH_TIMEOUT_MS} ms; cmd=${describeCmd}\n--- server output ---\n${logs()}`);
    }
    await sleep(100);
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return exited;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(t);
    }
    if (process.env.SLUICE_NODE_KEEP_LOGS) {
      process.stderr.write(`sluice server log: ${outPath}\n`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    return exited;
  };
  // A test file that crashes must not leave the server behind.
  process.once('exit', () => { if (!exited) child.kill('SIGKILL'); });

  return { endpoint, host, port, external: false, logs, stop };
}
