// FIFO queues (group order, deduplication, sequence numbers) and dead-letter
// queues (move after maxReceiveCount, ListDeadLetterSourceQueues, redrive back
// with a message move task).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachSdk, useServer } from '../lib/suite.mjs';
import { queueArn } from '../lib/sdk.mjs';
import { counts, getAttrs, md5Hex, receiveAll, sleep } from '../lib/helpers.mjs';

const server = useServer();
const SEQ_RE = /^[0-9]{20}$/;

async function makeFifo(q, prefix, extra = {}) {
  return q.make(prefix, { FifoQueue: 'true', ...extra }, undefined, { fifo: true });
}

forEachSdk(server, (ctx) => {
  it('CreateQueue FIFO: attributes', async () => {
    const { sdk, q, endpoint } = ctx;
    const { url, name } = await makeFifo(q, 'fifo');
    assert.ok(name.endsWith('.fifo'));
    assert.equal(url, `${endpoint}/000000000000/${name}`);
    const a = await getAttrs(sdk, url);
    assert.equal(a.FifoQueue, 'true');
    assert.equal(a.ContentBasedDeduplication, 'false');
    assert.equal(a.QueueArn, queueArn(name));
  });

  it('FIFO: per-group order, SequenceNumber on send and receive', async () => {
    const { sdk, q } = ctx;
    const { url } = await makeFifo(q, 'order');
    const sent = { g1: [], g2: [] };
    for (let i = 0; i < 4; i++) {
      for (const g of ['g1', 'g2']) {
        const out = await sdk.call('SendMessage', {
          QueueUrl: url, MessageBody: `${g}:${i}`, MessageGroupId: g, MessageDeduplicationId: `${g}-${i}`,
        });
        assert.equal(out.MD5OfMessageBody, md5Hex(`${g}:${i}`));
        sent[g].push(out);
      }
    }
    const batch = await sdk.call('SendMessageBatch', {
      QueueUrl: url,
      Entries: [4, 5].map((i) => ({
        Id: `e${i}`, MessageBody: `g1:${i}`, MessageGroupId: 'g1', MessageDeduplicationId: `g1-${i}`,
      })),
    });
    assert.deepEqual(batch.Failed ?? [], []);
    assert.deepEqual(batch.Successful.map((e) => e.Id), ['e4', 'e5']);
    sent.g1.push(...batch.Successful);

    // Model: "The length of SequenceNumber is 128 bits. SequenceNumber continues to
    // increase for a particular MessageGroupId." Real ones are 20-digit strings.
    for (const [g, outs] of Object.entries(sent)) {
      const seqs = outs.map((o) => o.SequenceNumber);
      for (const s of seqs) assert.match(s ?? '', SEQ_RE, `group ${g}: SequenceNumber ${s}`);
      const big = seqs.map(BigInt);
      for (let i = 1; i < big.length; i++) assert.ok(big[i] > big[i - 1], `group ${g}: ${seqs}`);
    }

    // Consume: receive, delete what was received, until all 10 are seen.
    const got = { g1: [], g2: [] };
    const seqById = {};
    for (let i = 0; i < 20 && got.g1.length + got.g2.length < 10; i++) {
      const out = await sdk.call('ReceiveMessage', {
        QueueUrl: url, MaxNumberOfMessages: 3, WaitTimeSeconds: 1, AttributeNames: ['All'],
      });
      for (const m of out.Messages ?? []) {
        const g = m.Attributes.MessageGroupId;
        got[g].push(m.Body);
        seqById[m.MessageId] = m.Attributes.SequenceNumber;
        assert.equal(m.Attributes.MessageDeduplicationId, `${g}-${m.Body.split(':')[1]}`);
        await sdk.call('DeleteMessage', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle });
      }
    }
    assert.deepEqual(got.g1, [0, 1, 2, 3, 4, 5].map((i) => `g1:${i}`));
    assert.deepEqual(got.g2, [0, 1, 2, 3].map((i) => `g2:${i}`));
    const want = Object.fromEntries([...sent.g1, ...sent.g2].map((o) => [o.MessageId, o.SequenceNumber]));
    assert.deepEqual(seqById, want, 'SequenceNumber attribute on receive = the one SendMessage returned');
  });

  it('FIFO: a group is blocked while one of its messages is in flight', async () => {
    const { sdk, q } = ctx;
    const { url } = await makeFifo(q, 'blocked', { ContentBasedDeduplication: 'true' });
    for (const b of ['a1', 'a2']) await sdk.call('SendMessage', { QueueUrl: url, MessageBody: b, MessageGroupId: 'a' });
    await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'b1', MessageGroupId: 'b' });
    const first = await sdk.call('ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 });
    assert.equal(first.Messages?.[0]?.Body, 'a1');
    const second = await receiveAll(sdk, url, 1, { maxCalls: 3 });
    assert.deepEqual(second.map((m) => m.Body), ['b1'], 'a2 must wait while a1 is in flight');
    await sdk.call('DeleteMessage', { QueueUrl: url, ReceiptHandle: first.Messages[0].ReceiptHandle });
    const third = await receiveAll(sdk, url, 1, { maxCalls: 3 });
    assert.deepEqual(third.map((m) => m.Body), ['a2']);
  });

  it('FIFO: a duplicate MessageDeduplicationId returns the same MessageId and is not delivered', async () => {
    const { sdk, q } = ctx;
    const { url } = await makeFifo(q, 'dedup');
    const first = await sdk.call('SendMessage', {
      QueueUrl: url, MessageBody: 'original', MessageGroupId: 'g', MessageDeduplicationId: 'same',
    });
    // Model: duplicates "are accepted successfully but aren't delivered during the
    // 5-minute deduplication interval"; the duplicate's answer carrying the original
    // MessageId is what the Python suite checks too (moderate evidence, see
    // tests/clients/python/test_fifo.py test_duplicate_explicit_dedup_id_returns_original).
    const dup = await sdk.call('SendMessage', {
      QueueUrl: url, MessageBody: 'different body', MessageGroupId: 'g', MessageDeduplicationId: 'same',
    });
    assert.equal(dup.MessageId, first.MessageId);
    assert.equal(dup.MD5OfMessageBody, md5Hex('different body'), 'v2/v3 check this against what they sent');
    const batch = await sdk.call('SendMessageBatch', {
      QueueUrl: url,
      Entries: [
        { Id: 'dup', MessageBody: 'third', MessageGroupId: 'g', MessageDeduplicationId: 'same' },
        { Id: 'new', MessageBody: 'new', MessageGroupId: 'g', MessageDeduplicationId: 'other' },
      ],
    });
    assert.deepEqual(batch.Failed ?? [], []);
    const ok = Object.fromEntries(batch.Successful.map((e) => [e.Id, e]));
    assert.equal(ok.dup.MessageId, first.MessageId);
    assert.notEqual(ok.new.MessageId, first.MessageId);
    assert.ok(BigInt(ok.new.SequenceNumber) > BigInt(first.SequenceNumber));

    const msgs = await receiveAll(sdk, url, 2, { AttributeNames: ['All'] });
    assert.deepEqual(msgs.map((m) => m.Body), ['original', 'new']);
    assert.equal(msgs[0].MessageId, first.MessageId);
    assert.deepEqual(await counts(sdk, url), [0, 2, 0]);
  });

  it('FIFO: content-based deduplication', async () => {
    const { sdk, q } = ctx;
    const { url } = await makeFifo(q, 'cbd', { ContentBasedDeduplication: 'true' });
    const a = await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'same body', MessageGroupId: 'g' });
    const b = await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'same body', MessageGroupId: 'g' });
    const c = await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'other body', MessageGroupId: 'g' });
    assert.equal(b.MessageId, a.MessageId);
    assert.notEqual(c.MessageId, a.MessageId);
    const msgs = await receiveAll(sdk, url, 2, { AttributeNames: ['MessageDeduplicationId'] });
    assert.deepEqual(msgs.map((m) => m.Body), ['same body', 'other body']);
    // The generated id is the SHA-256 of the body (CreateQueue docs, ContentBasedDeduplication).
    const { createHash } = await import('node:crypto');
    assert.equal(msgs[0].Attributes.MessageDeduplicationId, createHash('sha256').update('same body').digest('hex'));
  });

  it('DLQ: a message moves to the dead-letter queue after maxReceiveCount', async () => {
    const { sdk, q } = ctx;
    const dlq = await q.make('dlq');
    const redrive = JSON.stringify({ deadLetterTargetArn: queueArn(dlq.name), maxReceiveCount: 2 });
    const src = await q.make('src', { VisibilityTimeout: 0, RedrivePolicy: redrive });
    const a = await getAttrs(sdk, src.url, ['RedrivePolicy']);
    const rp = JSON.parse(a.RedrivePolicy);
    assert.equal(rp.deadLetterTargetArn, queueArn(dlq.name));
    assert.equal(Number(rp.maxReceiveCount), 2);

    const A = { k: { DataType: 'String', StringValue: 'v' }, b: { DataType: 'Binary', BinaryValue: sdk.bin([9, 8, 7]) } };
    const sent = await sdk.call('SendMessage', { QueueUrl: src.url, MessageBody: 'poison', MessageAttributes: A });
    const deliveries = [];
    for (let i = 0; i < 6; i++) {
      const out = await sdk.call('ReceiveMessage', {
        QueueUrl: src.url, WaitTimeSeconds: 1, AttributeNames: ['ApproximateReceiveCount'],
      });
      if (!out.Messages?.length) break;
      deliveries.push(out.Messages[0].Attributes.ApproximateReceiveCount);
    }
    // RedrivePolicy docs: "When the ReceiveCount for a message exceeds the
    // maxReceiveCount for a queue, Amazon SQS moves the message to the dead-letter-queue."
    assert.deepEqual(deliveries, ['1', '2']);

    const out = await sdk.call('ReceiveMessage', {
      QueueUrl: dlq.url, WaitTimeSeconds: 2, MessageAttributeNames: ['All'], AttributeNames: ['All'],
    });
    assert.equal(out.Messages?.length, 1, 'the message must be in the DLQ');
    const m = out.Messages[0];
    assert.equal(m.Body, 'poison');
    assert.equal(m.MessageId, sent.MessageId, 'the moved message keeps its MessageId');
    assert.equal(m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
    assert.deepEqual(Object.keys(m.MessageAttributes).sort(), ['b', 'k']);
    assert.deepEqual(Buffer.from(m.MessageAttributes.b.BinaryValue), Buffer.from([9, 8, 7]));
    assert.deepEqual(await counts(sdk, src.url), [0, 0, 0]);

    const sources = await sdk.call('ListDeadLetterSourceQueues', { QueueUrl: dlq.url });
    assert.deepEqual(sources.queueUrls, [src.url]);
  });

  it('DLQ: redrive back to the source with StartMessageMoveTask', async () => {
    const { sdk, q } = ctx;
    const dlq = await q.make('dlq');
    const redrive = JSON.stringify({ deadLetterTargetArn: queueArn(dlq.name), maxReceiveCount: 1 });
    const src = await q.make('src', { VisibilityTimeout: 0, RedrivePolicy: redrive });
    await sdk.call('SendMessageBatch', {
      QueueUrl: src.url, Entries: [0, 1, 2].map((i) => ({ Id: `e${i}`, MessageBody: `m${i}` })),
    });
    for (let i = 0; i < 20 && (await counts(sdk, dlq.url))[0] < 3; i++) {
      await sdk.call('ReceiveMessage', { QueueUrl: src.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 });
    }
    assert.equal((await counts(sdk, dlq.url))[0], 3, 'three messages dead-lettered');
    // Stop the source from dead-lettering again while the redriven messages are read.
    await sdk.call('SetQueueAttributes', { QueueUrl: src.url, Attributes: { VisibilityTimeout: '30' } });

    const started = await sdk.call('StartMessageMoveTask', { SourceArn: queueArn(dlq.name) });
    assert.equal(typeof started.TaskHandle, 'string');
    let task;
    for (let i = 0; i < 50; i++) {
      const r = await sdk.call('ListMessageMoveTasks', { SourceArn: queueArn(dlq.name) });
      task = r.Results?.[0];
      if (task?.Status === 'COMPLETED') break;
      await sleep(200);
    }
    assert.equal(task?.Status, 'COMPLETED', JSON.stringify(task));
    assert.equal(task.SourceArn, queueArn(dlq.name));
    assert.equal(task.ApproximateNumberOfMessagesMoved, 3);
    assert.equal(typeof task.StartedTimestamp, 'number');
    assert.deepEqual(await counts(sdk, dlq.url), [0, 0, 0]);
    const back = await receiveAll(sdk, src.url, 3);
    assert.deepEqual(back.map((m) => m.Body).sort(), ['m0', 'm1', 'm2']);
  });
});
