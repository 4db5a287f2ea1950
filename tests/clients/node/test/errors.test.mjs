// Error cases as a JS application sees them.
//
// SQS errors have a legacy query-protocol code (e.g. AWS.SimpleQueueService.NonExistentQueue)
// and, in the JSON protocol, a modeled shape name (e.g. QueueDoesNotExist, sent as
// `__type`). With `x-amzn-query-mode: true` on the request, AWS also returns the
// legacy code in the `x-amzn-query-error: <code>;Sender` header.
//
//  v2 (query): err.code = err.name = the legacy code from the XML <Code>; err.statusCode.
//  v3 (JSON):  @aws-sdk/core (ProtocolLib.setQueryCompatError, loadJsonRpcErrorCode with
//              queryCompat) reads the header first: err.Code / err.Type / err.Error.Code
//              come from it, and the legacy code is mapped back to the modeled exception
//              class through the model's awsQueryError trait (err.name = QueueDoesNotExist).
//              For an error the model does not define (InvalidParameterValue,
//              MissingParameter) err.name is the legacy code from the header.
//              See the stub test at the end for what v3 does without the header.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { forEachSdk, useServer } from '../lib/suite.mjs';
import { makeV3, v3Module } from '../lib/sdk.mjs';
import { expectSqsError, receiveOne, uniqueName } from '../lib/helpers.mjs';

const server = useServer();
const NEQ = { code: 'AWS.SimpleQueueService.NonExistentQueue', shape: 'QueueDoesNotExist', status: 400 };

forEachSdk(server, (ctx) => {
  it('GetQueueUrl of a missing queue: QueueDoesNotExist / AWS.SimpleQueueService.NonExistentQueue, HTTP 400', async () => {
    const { sdk } = ctx;
    const err = await expectSqsError(sdk, sdk.call('GetQueueUrl', { QueueName: uniqueName('missing') }), NEQ);
    // The message AWS sends (SQS API reference, QueueDoesNotExist: "Ensure that the
    // QueueUrl is correct and that the queue has not been deleted.")
    assert.equal(err.message, 'The specified queue does not exist.');
    if (sdk.kind === 'v2') assert.equal(err.name, NEQ.code);
  });

  it('operations on a deleted queue URL: QueueDoesNotExist', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('deleted');
    await sdk.call('DeleteQueue', { QueueUrl: url });
    const calls = {
      SendMessage: { QueueUrl: url, MessageBody: 'x' },
      SendMessageBatch: { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: 'x' }] },
      ReceiveMessage: { QueueUrl: url, WaitTimeSeconds: 0 },
      GetQueueAttributes: { QueueUrl: url, AttributeNames: ['All'] },
      SetQueueAttributes: { QueueUrl: url, Attributes: { VisibilityTimeout: '5' } },
      PurgeQueue: { QueueUrl: url },
      ListQueueTags: { QueueUrl: url },
      DeleteQueue: { QueueUrl: url },
    };
    for (const [op, input] of Object.entries(calls)) {
      await expectSqsError(sdk, sdk.call(op, input), NEQ).catch((e) => {
        e.message = `${op}: ${e.message}`;
        throw e;
      });
    }
  });

  it('a well-formed URL of a queue that never existed: QueueDoesNotExist', async () => {
    const { sdk, endpoint } = ctx;
    const url = `${endpoint}/000000000000/${uniqueName('never')}`;
    await expectSqsError(sdk, sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'x' }), NEQ);
    await expectSqsError(sdk, sdk.call('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] }), NEQ);
  });

  it('CreateQueue with an unknown attribute: InvalidAttributeName', async () => {
    const { sdk } = ctx;
    await expectSqsError(sdk, sdk.call('CreateQueue', { QueueName: uniqueName('badattr'), Attributes: { NoSuchAttribute: '1' } }),
      { code: 'InvalidAttributeName', shape: 'InvalidAttributeName' });
  });

  it('an error the model does not define: InvalidParameterValue', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('ipv');
    await sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'x' });
    const m = await receiveOne(sdk, url);
    // ChangeMessageVisibility model: "Values range: 0 to 43200."
    const err = await expectSqsError(sdk,
      sdk.call('ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43201 }),
      { code: 'InvalidParameterValue', shape: 'InvalidParameterValue' });
    if (sdk.kind === 'v3') {
      // Not a modeled class: the base SQSServiceException, named after the header's code.
      assert.equal(Object.getPrototypeOf(err), v3Module.SQSServiceException.prototype);
    }
  });

  it('batch errors: EmptyBatchRequest, TooManyEntriesInBatchRequest, BatchEntryIdsNotDistinct', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('batcherr');
    await expectSqsError(sdk, sdk.call('SendMessageBatch', { QueueUrl: url, Entries: [] }),
      { code: 'AWS.SimpleQueueService.EmptyBatchRequest', shape: 'EmptyBatchRequest' });
    await expectSqsError(sdk, sdk.call('SendMessageBatch', {
      QueueUrl: url, Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' })),
    }), { code: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest', shape: 'TooManyEntriesInBatchRequest' });
    await expectSqsError(sdk, sdk.call('DeleteMessageBatch', {
      QueueUrl: url, Entries: [{ Id: 'same', ReceiptHandle: 'a' }, { Id: 'same', ReceiptHandle: 'b' }],
    }), { code: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', shape: 'BatchEntryIdsNotDistinct' });
  });

  it('FIFO send without MessageGroupId: MissingParameter', async () => {
    const { sdk, q } = ctx;
    const { url } = await q.make('nogroup', { FifoQueue: 'true', ContentBasedDeduplication: 'true' }, undefined, { fifo: true });
    // LocalStack's AWS-recorded snapshot: Code MissingParameter (JSON __type
    // MissingRequiredParameterException, which the model does not define).
    await expectSqsError(sdk, sdk.call('SendMessage', { QueueUrl: url, MessageBody: 'x' }),
      { code: 'MissingParameter', shape: 'MissingParameter' });
  });
});

// SDK behaviour, shown against a loopback stub: what v3 makes of the same JSON
// error body with and without the x-amzn-query-error header. This is why sluice
// must send the header: code written against v2 (or the query protocol) that tests
// err.Code === 'AWS.SimpleQueueService.NonExistentQueue' keeps working with v3
// only when the header is there.
describe('v3 and the x-amzn-query-error header (loopback stub, not sluice)', () => {
  let stub;
  let ep;
  before(async () => {
    stub = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = 400;
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        res.setHeader('x-amzn-requestid', 'stub-request');
        if (String(req.headers['x-test-variant']) === 'with') {
          res.setHeader('x-amzn-query-error', 'AWS.SimpleQueueService.NonExistentQueue;Sender');
        }
        res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' }));
      });
    });
    await new Promise((r) => stub.listen(0, '127.0.0.1', r));
    ep = `http://127.0.0.1:${stub.address().port}`;
  });
  after(() => new Promise((r) => stub.close(r)));

  async function failWith(variant) {
    const sdk = makeV3(ep, { endpointMode: 'literal' });
    sdk.client.middlewareStack.add((next) => (args) => {
      args.request.headers['x-test-variant'] = variant;
      return next(args);
    }, { step: 'build', name: 'variant' });
    try {
      await sdk.call('GetQueueUrl', { QueueName: 'q' });
    } catch (e) {
      return e;
    } finally {
      sdk.destroy();
    }
    assert.fail('stub call succeeded');
  }

  it('with the header: modeled class from __type/awsQueryError, legacy code in err.Code', async () => {
    const err = await failWith('with');
    assert.ok(err instanceof v3Module.QueueDoesNotExist);
    assert.equal(err.name, 'QueueDoesNotExist');
    assert.equal(err.Code, 'AWS.SimpleQueueService.NonExistentQueue');
    assert.equal(err.Type, 'Sender');
    assert.equal(err.$metadata.httpStatusCode, 400);
  });

  it('without the header: same class, but no legacy code', async () => {
    const err = await failWith('without');
    assert.ok(err instanceof v3Module.QueueDoesNotExist);
    assert.equal(err.name, 'QueueDoesNotExist');
    assert.equal(err.Code, undefined);
    assert.equal(err.$metadata.httpStatusCode, 400);
  });
});
