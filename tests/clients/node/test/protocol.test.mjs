// The clients really speak the protocol they are meant to exercise, carry request
// ids, and verify MD5 digests themselves (so every passing send/receive elsewhere
// in the suite is also a passing client-side MD5 check).
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it, before, after } from 'node:test';
import { forEachSdk, useServer } from '../lib/suite.mjs';
import { makeV2, makeV3, V2_VERSION, V3_VERSION } from '../lib/sdk.mjs';
import { md5Hex } from '../lib/helpers.mjs';

const server = useServer();

describe('installed client versions', () => {
  it('aws-sdk-v2-query is aws-sdk 2.1490.0 with the query-protocol SQS model', () => {
    // 2.1491.0 switched SQS to JSON 1.0 (https://github.com/aws/aws-sdk-js/issues/4523).
    assert.equal(V2_VERSION, '2.1490.0');
    const sdk = makeV2('http://127.0.0.1:1');
    assert.equal(sdk.client.api.protocol, 'query');
    assert.equal(sdk.client.api.apiVersion, '2012-11-05');
  });

  it('@aws-sdk/client-sqs is a JSON-protocol v3 release (>= 3.447.0)', () => {
    const [major, minor] = V3_VERSION.split('.').map(Number);
    assert.equal(major, 3);
    assert.ok(minor >= 447, `client-sqs ${V3_VERSION} predates the JSON protocol`);
  });
});

forEachSdk(server, (ctx) => {
  it('speaks the expected wire protocol', async () => {
    const { sdk } = ctx;
    sdk.requests.length = 0;
    const out = await sdk.call('ListQueues', {});
    const rec = sdk.requests.at(-1);
    assert.equal(rec.op, 'ListQueues');
    assert.equal(rec.method, 'POST');
    assert.equal(rec.status, 200);
    const h = Object.fromEntries(Object.entries(rec.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const rh = rec.responseHeaders ?? {};
    if (sdk.kind === 'v3') {
      assert.equal(h['content-type'], 'application/x-amz-json-1.0');
      assert.equal(h['x-amz-target'], 'AmazonSQS.ListQueues');
      // awsQueryCompatible: the client announces it and expects x-amzn-query-error on errors.
      assert.equal(h['x-amzn-query-mode'], 'true');
      assert.match(String(rh['content-type']), /^application\/x-amz-json-1\.0/);
      assert.ok(out.$metadata.requestId, 'x-amzn-RequestId');
      assert.equal(out.$metadata.httpStatusCode, 200);
    } else {
      assert.match(h['content-type'], /^application\/x-www-form-urlencoded/);
      const form = new URLSearchParams(rec.body);
      assert.equal(form.get('Action'), 'ListQueues');
      assert.equal(form.get('Version'), '2012-11-05');
      assert.equal(h['x-amz-target'], undefined);
      assert.match(String(rh['content-type']), /xml/);
      // <ResponseMetadata><RequestId> in the XML body.
      assert.ok(out.ResponseMetadata?.RequestId, `no RequestId in ${JSON.stringify(out)}`);
    }
    assert.match(h.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/us-east-1\/sqs\/aws4_request/);
  });

  it('has client-side MD5 verification switched on', () => {
    const { sdk } = ctx;
    if (sdk.kind === 'v3') {
      // @aws-sdk/middleware-sdk-sqs skips its checks only when config.md5 === false.
      assert.equal(typeof sdk.client.config.md5, 'function');
    } else {
      // lib/services/sqs.js adds its verify*Checksum listeners only with computeChecksums.
      assert.equal(sdk.client.config.computeChecksums, true);
    }
  });
});

// Proof that the MD5 checks are live in this set-up: a stub that answers with a
// wrong MD5OfMessageBody makes each SDK throw. (Against sluice the same calls pass.)
describe('client MD5 checks reject a wrong digest (loopback stub, not sluice)', () => {
  let stub;
  let stubEp;
  const BAD = '0'.repeat(32);
  before(async () => {
    stub = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const json = String(req.headers['content-type']).startsWith('application/x-amz-json');
        const op = json ? String(req.headers['x-amz-target']).split('.')[1] : new URLSearchParams(body).get('Action');
        const msg = { MessageId: '11111111-2222-3333-4444-555555555555', Body: 'hello', MD5OfBody: BAD, ReceiptHandle: 'rh' };
        if (json) {
          res.setHeader('content-type', 'application/x-amz-json-1.0');
          res.setHeader('x-amzn-requestid', 'stub');
          res.end(JSON.stringify(op === 'SendMessage'
            ? { MessageId: msg.MessageId, MD5OfMessageBody: BAD }
            : { Messages: [msg] }));
        } else {
          res.setHeader('content-type', 'text/xml');
          res.end(op === 'SendMessage'
            ? `<SendMessageResponse><SendMessageResult><MessageId>${msg.MessageId}</MessageId><MD5OfMessageBody>${BAD}</MD5OfMessageBody></SendMessageResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></SendMessageResponse>`
            : `<ReceiveMessageResponse><ReceiveMessageResult><Message><MessageId>${msg.MessageId}</MessageId><ReceiptHandle>rh</ReceiptHandle><MD5OfBody>${BAD}</MD5OfBody><Body>hello</Body></Message></ReceiveMessageResult><ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></ReceiveMessageResponse>`);
        }
      });
    });
    await new Promise((r) => stub.listen(0, '127.0.0.1', r));
    stubEp = `http://127.0.0.1:${stub.address().port}`;
  });
  after(() => new Promise((r) => stub.close(r)));

  it('v3 throws on SendMessage and ReceiveMessage', async () => {
    const sdk = makeV3(stubEp, { endpointMode: 'literal' });
    const QueueUrl = `${stubEp}/000000000000/stub`;
    assert.notEqual(md5Hex('hello'), BAD);
    await assert.rejects(sdk.call('SendMessage', { QueueUrl, MessageBody: 'hello' }), /InvalidChecksumError/);
    await assert.rejects(sdk.call('ReceiveMessage', { QueueUrl }), /Invalid MD5 checksum on messages/);
    sdk.destroy();
  });

  it('v2 throws InvalidChecksum on SendMessage and ReceiveMessage', async () => {
    const sdk = makeV2(stubEp);
    const QueueUrl = `${stubEp}/000000000000/stub`;
    await assert.rejects(sdk.call('SendMessage', { QueueUrl, MessageBody: 'hello' }), (e) => e.code === 'InvalidChecksum');
    await assert.rejects(sdk.call('ReceiveMessage', { QueueUrl }), (e) => e.code === 'InvalidChecksum');
  });
});
