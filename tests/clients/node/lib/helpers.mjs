// Shared test helpers: names, MD5 digests computed independently, polling
// receives, queue clean-up and error assertions for each SDK's error surface.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { v3Module } from './sdk.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Queue name unique to this run (alphanumerics, '-' and '_' only, <= 80 chars). */
export function uniqueName(prefix = 'q') {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

export function nameOf(url) {
  return url.replace(/\/+$/, '').split('/').pop();
}

export function md5Hex(data) {
  return createHash('md5').update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).digest('hex');
}

function lenPrefixed(buf) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/**
 * MD5 of message attributes, per the SQS Developer Guide ("Calculating the MD5
 * message digest for message attributes"): for each attribute, sorted by name:
 * length-prefixed UTF-8 name, length-prefixed UTF-8 DataType, one transport byte
 * (1 = String/Number, 2 = Binary), length-prefixed value (UTF-8 string or raw bytes).
 */
export function md5OfAttributes(attrs) {
  const parts = [];
  for (const name of Object.keys(attrs).sort()) {
    const a = attrs[name];
    parts.push(lenPrefixed(Buffer.from(name, 'utf8')));
    parts.push(lenPrefixed(Buffer.from(a.DataType, 'utf8')));
    if (a.StringValue !== undefined && a.StringValue !== null) {
      parts.push(Buffer.from([1]), lenPrefixed(Buffer.from(a.StringValue, 'utf8')));
    } else {
      parts.push(Buffer.from([2]), lenPrefixed(Buffer.from(a.BinaryValue)));
    }
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}

/** Attribute maps equal, comparing binary values by bytes (v3 gives Uint8Array, v2 Buffer). */
export function assertAttributesEqual(got, want, what = 'MessageAttributes') {
  assert.ok(got, `${what} missing`);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: attribute names`);
  for (const [k, w] of Object.entries(want)) {
    const g = got[k];
    assert.equal(g.DataType, w.DataType, `${what}.${k}.DataType`);
    if (w.StringValue !== undefined) {
      assert.equal(g.StringValue, w.StringValue, `${what}.${k}.StringValue`);
      assert.equal(g.BinaryValue, undefined, `${what}.${k}: unexpected BinaryValue`);
    } else {
      assert.ok(g.BinaryValue instanceof Uint8Array, `${what}.${k}.BinaryValue must be bytes, got ${typeof g.BinaryValue}`);
      assert.deepEqual(Buffer.from(g.BinaryValue), Buffer.from(w.BinaryValue), `${what}.${k}.BinaryValue`);
      assert.equal(g.StringValue, undefined, `${what}.${k}: unexpected StringValue`);
    }
  }
}

export async function getAttrs(sdk, url, names = ['All']) {
  const out = await sdk.call('GetQueueAttributes', { QueueUrl: url, AttributeNames: names });
  return out.Attributes ?? {};
}

/** [ApproximateNumberOfMessages, ...NotVisible, ...Delayed] as numbers. */
export async function counts(sdk, url) {
  const a = await getAttrs(sdk, url, [
    'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed',
  ]);
  return [Number(a.ApproximateNumberOfMessages), Number(a.ApproximateNumberOfMessagesNotVisible),
    Number(a.ApproximateNumberOfMessagesDelayed)];
}

/**
 * Receive until `expected` distinct messages were seen or maxCalls is hit.
 * (SQS may return fewer messages than available, so a deterministic test collects
 * over several calls.)
 */
export async function receiveAll(sdk, url, expected, { maxCalls = 20, wait = 1, ...input } = {}) {
  const seen = new Map();
  const max = input.MaxNumberOfMessages ?? 10;
  for (let i = 0; i < maxCalls && seen.size < expected; i++) {
    const out = await sdk.call('ReceiveMessage', {
      QueueUrl: url, WaitTimeSeconds: wait, MaxNumberOfMessages: max, ...input,
    });
    const msgs = out.Messages ?? [];
    assert.ok(msgs.length <= max, `ReceiveMessage returned ${msgs.length} > MaxNumberOfMessages=${max}`);
    for (const m of msgs) seen.set(m.MessageId, m);
  }
  return [...seen.values()];
}

export async function receiveOne(sdk, url, input = {}) {
  const out = await sdk.call('ReceiveMessage', { QueueUrl: url, WaitTimeSeconds: 2, ...input });
  const msgs = out.Messages ?? [];
  assert.equal(msgs.length, 1, `expected exactly one message, got ${msgs.length}: ${JSON.stringify(msgs)}`);
  return msgs[0];
}

/**
 * Per-test queue factory. `const q = queues(sdk)`; `await q.make('pfx', attrs, tags)`
 * returns { url, name }; `await q.cleanup()` deletes them (errors ignored).
 */
export function queues(sdk) {
  const created = [];
  return {
    async make(prefix = 'q', Attributes, tags, { fifo = false } = {}) {
      const name = uniqueName(prefix) + (fifo ? '.fifo' : '');
      const input = { QueueName: name };
      if (Attributes) input.Attributes = Object.fromEntries(Object.entries(Attributes).map(([k, v]) => [k, String(v)]));
      if (tags) input.tags = tags;
      const out = await sdk.call('CreateQueue', input);
      assert.equal(typeof out.QueueUrl, 'string', 'CreateQueue must return QueueUrl');
      created.push(out.QueueUrl);
      return { url: out.QueueUrl, name };
    },
    async cleanup() {
      for (const url of created.splice(0)) {
        try { await sdk.call('DeleteQueue', { QueueUrl: url }); } catch { /* already gone */ }
      }
    },
  };
}

/**
 * Expect `promise` to reject with the SQS error `code` (the legacy query-protocol
 * code, e.g. AWS.SimpleQueueService.NonExistentQueue) / modeled shape `shape`
 * (e.g. QueueDoesNotExist), as each SDK exposes it to an application:
 *
 *  v3 (JSON + awsQueryCompatible): an instance of the modeled exception class,
 *     err.name = shape; err.Code / err.Type / err.Error.{Code,Type} taken from the
 *     `x-amzn-query-error: <code>;Sender` response header (@aws-sdk/core
 *     ProtocolLib.setQueryCompatError); $metadata.httpStatusCode; $fault 'client'.
 *  v2 (query): err.code = <Error><Code> of the XML body, err.statusCode, err.requestId.
 *
 * status: expected HTTP status (null = don't check). Returns the error.
 */
export async function expectSqsError(sdk, promise, { code, shape, status = 400, messageIncludes } = {}) {
  let err;
  try {
    const out = await promise;
    assert.fail(`expected ${shape ?? code} (${code}), but the call succeeded: ${JSON.stringify(out)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  const detail = sdk.kind === 'v3'
    ? `got name=${err.name} Code=${err.Code} Type=${err.Type} status=${err.$metadata?.httpStatusCode} ` +
      `x-amzn-query-error=${err.$response?.headers?.['x-amzn-query-error']} message=${err.message}`
    : `got code=${err.code} name=${err.name} statusCode=${err.statusCode} message=${err.message}`;
  if (sdk.kind === 'v3') {
    assert.ok(err.$metadata, `not a service error (no $metadata): ${err.stack}`);
    if (shape) {
      assert.equal(err.name, shape, `err.name; ${detail}`);
      const Cls = v3Module[shape];
      if (Cls) assert.ok(err instanceof Cls, `err instanceof ${shape}; ${detail}`);
    }
    assert.ok(err instanceof v3Module.SQSServiceException, `err instanceof SQSServiceException; ${detail}`);
    assert.equal(err.$response?.headers?.['x-amzn-query-error'], `${code};Sender`, `x-amzn-query-error header; ${detail}`);
    assert.equal(err.Code, code, `err.Code (from x-amzn-query-error); ${detail}`);
    assert.equal(err.Type, 'Sender', `err.Type (from x-amzn-query-error); ${detail}`);
    assert.equal(err.Error?.Code, code, `err.Error.Code; ${detail}`);
    assert.equal(err.$fault, 'client', `err.$fault; ${detail}`);
    if (status !== null) assert.equal(err.$metadata.httpStatusCode, status, `$metadata.httpStatusCode; ${detail}`);
    assert.ok(err.$metadata.requestId, `$metadata.requestId (x-amzn-RequestId); ${detail}`);
  } else {
    assert.equal(err.code, code, `err.code; ${detail}`);
    // v2 names the error after the code (util.error copies code into name).
    assert.equal(err.name, code, `err.name; ${detail}`);
    if (status !== null) assert.equal(err.statusCode, status, `err.statusCode; ${detail}`);
    assert.ok(err.requestId, `err.requestId; ${detail}`);
    assert.equal(err.retryable, false, `err.retryable; ${detail}`);
  }
  if (messageIncludes) assert.ok(String(err.message).includes(messageIncludes), `message; ${detail}`);
  return err;
}
