// Queue management: CreateQueue (attributes, tags), GetQueueUrl, ListQueues,
// Get/SetQueueAttributes, tags, DeleteQueue, and where each SDK sends requests
// that carry a QueueUrl.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { forEachSdk, useServer } from '../lib/suite.mjs';
import { ACCOUNT_ID } from '../lib/sluice.mjs';
import { makeV2, makeV3, captureLogger, queueArn } from '../lib/sdk.mjs';
import { counts, getAttrs, queues, receiveOne, uniqueName, expectSqsError } from '../lib/helpers.mjs';

const server = useServer();

forEachSdk(server, (ctx) => {
  it('CreateQueue with attributes and tags', async () => {
    const { sdk, q, endpoint } = ctx;
    const before = Math.floor(Date.now() / 1000) - 2;
    const { url, name } = await q.make('created', {
      VisibilityTimeout: 45,
      DelaySeconds: 2,
      MessageRetentionPeriod: 3600,
      MaximumMessageSize: 2048,
      ReceiveMessageWaitTimeSeconds: 1,
    }, { env: 'test', team: 'sluice' });
    // The queue URL names the host the request was sent to, so it is usable as is.
    assert.equal(url, `${endpoint}/${ACCOUNT_ID}/${name}`);

    const a = await getAttrs(sdk, url);
    assert.equal(a.VisibilityTimeout, '45');
    assert.equal(a.DelaySeconds, '2');
    assert.equal(a.MessageRetentionPeriod, '3600');
    assert.equal(a.MaximumMessageSize, '2048');
    assert.equal(a.ReceiveMessageWaitTimeSeconds, '1');
    assert.equal(a.QueueArn, queueArn(name));
    assert.equal(a.ApproximateNumberOfMessages, '0');
    assert.equal(a.ApproximateNumberOfMessagesNotVisible, '0');
    assert.equal(a.ApproximateNumberOfMessagesDelayed, '0');
    for (const k of ['CreatedTimestamp', 'LastModifiedTimestamp']) {
      // Epoch seconds as a string.
      assert.match(a[k] ?? '', /^\d+$/, `${k}=${a[k]}`);
      const t = Number(a[k]);
      assert.ok(t >= before && t <= Date.now() / 1000 + 2, `${k}=${a[k]} not now`);
    }
    assert.equal(a.FifoQueue, undefined, 'standard queues have no FifoQueue attribute');

    const tags = await sdk.call('ListQueueTags', { QueueUrl: url });
    assert.deepEqual(tags.Tags, { env: 'test', team: 'sluice' });
  });

  it('CreateQueue defaults', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('defaults');
    const a = await getAttrs(sdk, url);
    // CreateQueue docs: defaults for each attribute (MaximumMessageSize: 1 MiB
    // since AWS raised the message size limit in August 2025; 256 KiB before).
    assert.equal(a.VisibilityTimeout, '30');
    assert.equal(a.DelaySeconds, '0');
    assert.equal(a.MessageRetentionPeriod, '345600');
    assert.equal(a.MaximumMessageSize, '1048576');
    assert.equal(a.ReceiveMessageWaitTimeSeconds, '0');
  });

  it('CreateQueue is idempotent for the same name and attributes', async () => {
    const { sdk, q } = ctx;
    const { url, name } = await q.make('idem', { VisibilityTimeout: 40 });
    const again = await sdk.call('CreateQueue', { QueueName: name, Attributes: { VisibilityTimeout: '40' } });
    assert.equal(again.QueueUrl, url);
  });

  it('CreateQueue with the same name but other attributes fails with QueueNameExists', async () => {
    const { sdk, q } = ctx;
    const { name } = await q.make('clash', { VisibilityTimeout: 40 });
    await expectSqsError(sdk, sdk.call('CreateQueue', { QueueName: name, Attributes: { VisibilityTimeout: '41' } }),
      { code: 'QueueAlreadyExists', shape: 'QueueNameExists' });
  });

  it('GetQueueUrl returns the URL CreateQueue returned', async () => {
    const { sdk, q } = ctx;
    const { url, name } = await q.make('geturl');
    assert.equal((await sdk.call('GetQueueUrl', { QueueName: name })).QueueUrl, url);
    assert.equal((await sdk.call('GetQueueUrl', { QueueName: name, QueueOwnerAWSAccountId: ACCOUNT_ID })).QueueUrl, url);
  });

  it('ListQueues with a prefix, and paginated with MaxResults/NextToken', async () => {
    const { sdk, q } = ctx;
    const prefix = uniqueName('lst');
    const urls = [];
    for (const s of ['a', 'b', 'c']) urls.push((await q.make(`${prefix}-${s}`)).url);
    await q.make('other');

    const all = await sdk.call('ListQueues', { QueueNamePrefix: prefix });
    assert.deepEqual([...all.QueueUrls].sort(), [...urls].sort());
    assert.equal(all.NextToken, undefined);

    const page1 = await sdk.call('ListQueues', { QueueNamePrefix: prefix, MaxResults: 2 });
    assert.equal(page1.QueueUrls.length, 2);
    assert.ok(page1.NextToken, 'NextToken when more results remain');
    const page2 = await sdk.call('ListQueues', { QueueNamePrefix: prefix, MaxResults: 2, NextToken: page1.NextToken });
    assert.equal(page2.QueueUrls.length, 1);
    assert.equal(page2.NextToken, undefined);
    assert.deepEqual([...page1.QueueUrls, ...page2.QueueUrls].sort(), [...urls].sort());

    const none = await sdk.call('ListQueues', { QueueNamePrefix: uniqueName('nothing') });
    // No <QueueUrl> elements / no QueueUrls member: the SDKs leave the list out.
    assert.deepEqual(none.QueueUrls ?? [], []);
  });

  it('SetQueueAttributes then GetQueueAttributes (named attributes only)', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('setattr');
    const out = await sdk.call('SetQueueAttributes', {
      QueueUrl: url,
      Attributes: { VisibilityTimeout: '60', DelaySeconds: '5', MaximumMessageSize: '1024' },
    });
    if (sdk.kind === 'v3') assert.equal(out.$metadata.httpStatusCode, 200);
    const a = await getAttrs(sdk, url, ['VisibilityTimeout', 'DelaySeconds', 'MaximumMessageSize']);
    assert.deepEqual(a, { VisibilityTimeout: '60', DelaySeconds: '5', MaximumMessageSize: '1024' });
  });

  it('TagQueue, ListQueueTags, UntagQueue', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('tags');
    assert.deepEqual((await sdk.call('ListQueueTags', { QueueUrl: url })).Tags ?? {}, {});
    await sdk.call('TagQueue', { QueueUrl: url, Tags: { a: '1', b: '2', c: '' } });
    assert.deepEqual((await sdk.call('ListQueueTags', { QueueUrl: url })).Tags, { a: '1', b: '2', c: '' });
    await sdk.call('TagQueue', { QueueUrl: url, Tags: { a: 'one' } });
    await sdk.call('UntagQueue', { QueueUrl: url, TagKeys: ['b', 'c'] });
    assert.deepEqual((await sdk.call('ListQueueTags', { QueueUrl: url })).Tags, { a: 'one' });
  });

  it('DeleteQueue removes the queue', async () => {
    const { sdk, q } = ctx;
    const { url, name } = await q.make('gone');
    await sdk.call('DeleteQueue', { QueueUrl: url });
    await expectSqsError(sdk, sdk.call('GetQueueUrl', { QueueName: name }),
      { code: 'AWS.SimpleQueueService.NonExistentQueue', shape: 'QueueDoesNotExist' });
    const listed = await sdk.call('ListQueues', { QueueNamePrefix: name });
    assert.deepEqual(listed.QueueUrls ?? [], []);
  });
});

// Where requests that carry a QueueUrl go.
//
// v3: @aws-sdk/middleware-sdk-sqs queueUrlMiddleware (useQueueUrlAsEndpoint, default
// true) replaces the resolved endpoint by the QueueUrl's origin whenever the client
// was not given a literal `endpoint` and the two differ (and logs a warning).
// v2: lib/services/sqs.js buildEndpoint always sends to the QueueUrl's host.
// So a queue URL that does not point back at the server breaks both SDKs; sluice's
// URLs carry the Host the request was sent to.
describe('requests after CreateQueue use the returned QueueUrl and reach sluice', () => {
  const variants = [
    ['v3, endpoint from AWS_ENDPOINT_URL_SQS (useQueueUrlAsEndpoint active)', (ep) => makeV3(ep, { endpointMode: 'configured', logger: captureLogger() })],
    ['v3, literal endpoint', (ep) => makeV3(ep, { endpointMode: 'literal', logger: captureLogger() })],
    ['v2', (ep) => makeV2(ep)],
  ];
  for (const [title, make] of variants) {
    it(title, async () => {
      const { endpoint, host, port } = server();
      const sdk = make(endpoint);
      const q = queues(sdk);
      try {
        const { url, name } = await q.make('routed');
        const u = new URL(url);
        assert.equal(u.origin, endpoint, 'QueueUrl origin = where CreateQueue was sent');
        assert.equal(u.pathname, `/${ACCOUNT_ID}/${name}`);

        sdk.requests.length = 0;
        // Everything below uses only the QueueUrl.
        const sent = await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'routed body' });
        const m = await receiveOne(sdk, url);
        assert.equal(m.MessageId, sent.MessageId);
        assert.equal(m.Body, 'routed body');
        await sdk.call('DeleteMessage', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle });
        assert.deepEqual(await counts(sdk, url), [0, 0, 0]);
        await sdk.call('TagQueue', { QueueUrl: url, Tags: { routed: 'yes' } });

        assert.deepEqual(sdk.requests.map((r) => r.op),
          ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'GetQueueAttributes', 'TagQueue']);
        for (const r of sdk.requests) {
          assert.equal(`${r.hostname}:${r.port}`, `${host}:${port}`, `${r.op} went to ${r.hostname}:${r.port}`);
          assert.equal(r.status, 200, `${r.op} answered ${r.status}`);
          // The Host header sluice builds later queue URLs from.
          assert.equal(r.headers.host ?? r.headers.Host, `${host}:${port}`, `${r.op} Host header`);
        }
        if (sdk.logger) {
          const warned = sdk.logger.lines.warn.filter((l) => l.includes('differs from SQSClient resolved endpoint'));
          assert.deepEqual(warned, [], 'v3 must not have to re-route any request');
        }
      } finally {
        await q.cleanup();
        sdk.destroy();
      }
    });
  }
});

// Harness check: the set-ups above really route by QueueUrl (otherwise the test
// above would pass trivially). A QueueUrl naming another loopback port (a decoy
// listener that answers 500 and counts requests) must be followed by v3 in the
// configured-endpoint set-up and by v2, and ignored by v3 with a literal endpoint.
describe('harness check: which set-ups follow the QueueUrl (loopback decoy, not sluice)', () => {
  let decoy;
  let decoyUrl;
  let hits = 0;
  before(async () => {
    decoy = http.createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => { res.statusCode = 500; res.end('decoy'); });
    });
    await new Promise((r) => decoy.listen(0, '127.0.0.1', r));
    decoyUrl = `http://127.0.0.1:${decoy.address().port}/${ACCOUNT_ID}/decoy-queue`;
  });
  after(() => new Promise((r) => decoy.close(r)));

  const cases = [
    ['v3, endpoint from AWS_ENDPOINT_URL_SQS: follows the QueueUrl (and warns)', (ep) => makeV3(ep, { endpointMode: 'configured' }), true],
    ['v3, literal endpoint: stays on the endpoint', (ep) => makeV3(ep, { endpointMode: 'literal' }), false],
    ['v2: follows the QueueUrl', (ep) => makeV2(ep), true],
  ];
  for (const [title, make, follows] of cases) {
    it(title, async () => {
      const sdk = make(server().endpoint);
      const before = hits;
      try {
        await sdk.call('GetQueueAttributes', { QueueUrl: decoyUrl, AttributeNames: ['All'] });
        assert.fail('call succeeded');
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
      } finally {
        sdk.destroy();
      }
      assert.equal(hits - before, follows ? 1 : 0, `requests that reached the decoy`);
      if (sdk.logger && follows) {
        assert.ok(sdk.logger.lines.warn.some((l) => l.includes('differs from SQSClient resolved endpoint')));
      }
    });
  }
});
