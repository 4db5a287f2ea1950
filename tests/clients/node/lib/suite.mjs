// Per-file scaffolding: one sluice per test file (node --test runs each file in its
// own process), and the same tests registered once per SDK.
import { after, afterEach, before, describe } from 'node:test';
import { startSluice } from './sluice.mjs';
import { makeV2, makeV3, V2_VERSION, V3_VERSION } from './sdk.mjs';
import { queues } from './helpers.mjs';

export const SDKS = [
  { kind: 'v3', title: `JS SDK v3 @aws-sdk/client-sqs ${V3_VERSION} (AWS JSON 1.0)`, make: (ep) => makeV3(ep) },
  { kind: 'v2', title: `JS SDK v2 aws-sdk ${V2_VERSION} (query)`, make: (ep) => makeV2(ep) },
];

/** Starts sluice for this file; returns a getter for { endpoint, host, port, ... }. */
export function useServer() {
  let server;
  before(async () => { server = await startSluice(); });
  after(async () => { await server?.stop(); });
  return () => server;
}

/**
 * forEachSdk(server, (ctx) => { it(...) }): registers a describe block per SDK.
 * ctx.sdk, ctx.q (queue factory, cleaned after each test) and ctx.endpoint are
 * filled in before the tests run.
 */
export function forEachSdk(getServer, register) {
  for (const spec of SDKS) {
    describe(spec.title, () => {
      const ctx = { kind: spec.kind };
      before(() => {
        ctx.endpoint = getServer().endpoint;
        ctx.server = getServer();
        ctx.sdk = spec.make(ctx.endpoint);
        ctx.q = queues(ctx.sdk);
      });
      afterEach(async () => { await ctx.q.cleanup(); });
      after(() => { ctx.sdk?.destroy(); });
      register(ctx);
    });
  }
}
