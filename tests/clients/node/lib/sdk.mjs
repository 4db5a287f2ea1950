// The two real JS clients under test, behind one small calling convention:
//
//   sdk.call('SendMessage', { QueueUrl, MessageBody })   -> the SDK's own output object
//
// v3 (`@aws-sdk/client-sqs`, AWS JSON 1.0 + awsQueryCompatible) is called the v3 way,
// `client.send(new SendMessageCommand(input))`; v2 (`aws-sdk@2.1490.0`, query
// protocol: form-encoded request, XML response) the v2 way,
// `client.sendMessage(input).promise()`. Inputs and outputs use the shapes of the
// SQS model, which both SDKs share; where they differ (errors, binary values,
// response metadata) the tests look at each SDK's own surface.
//
// Every request is recorded (sdk.requests) as it left the client, with the answer's
// status and headers, so tests can assert where it went and what protocol it spoke.
import { createRequire } from 'node:module';
import * as v3 from '@aws-sdk/client-sqs';
import { ACCOUNT_ID, REGION } from './sluice.mjs';

const require = createRequire(import.meta.url);
// Only the SQS client of v2 (loading the whole aws-sdk builds every service).
const SQSv2 = require('aws-sdk-v2-query/clients/sqs');

export const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
export const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

export const V3_VERSION = require('@aws-sdk/client-sqs/package.json').version;
export const V2_VERSION = require('aws-sdk-v2-query/package.json').version;

const lowerFirst = (s) => s[0].toLowerCase() + s.slice(1);

/** A logger that keeps what the SDK says (v3 logs the QueueUrl/endpoint mismatch with warn). */
export function captureLogger() {
  const lines = { debug: [], info: [], warn: [], error: [] };
  return {
    lines,
    debug: (...a) => lines.debug.push(a.join(' ')),
    info: (...a) => lines.info.push(a.join(' ')),
    warn: (...a) => lines.warn.push(a.join(' ')),
    error: (...a) => lines.error.push(a.join(' ')),
  };
}

/**
 * JS SDK v3 client.
 *
 * endpointMode:
 *  - 'configured' (default): the endpoint comes from AWS_ENDPOINT_URL_SQS, the way a
 *    deployed application is usually pointed at a local server. `endpoint` is NOT
 *    passed to the constructor, so the SDK's default `useQueueUrlAsEndpoint: true`
 *    is active: every request that carries a QueueUrl is sent to the QueueUrl's
 *    origin (@aws-sdk/middleware-sdk-sqs queueUrlMiddleware). This only works if
 *    sluice's queue URLs point back at sluice.
 *  - 'literal': `endpoint` passed to the constructor (LocalStack-style); the
 *    middleware then leaves the endpoint alone.
 */
export function makeV3(endpoint, { endpointMode = 'configured', logger = captureLogger() } = {}) {
  const config = {
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    // No retries: a 5xx or a throttle must surface as-is, not be hidden.
    maxAttempts: 1,
    // > the longest WaitTimeSeconds used (20).
    requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000 },
    logger,
  };
  if (endpointMode === 'literal') {
    config.endpoint = endpoint;
  } else if (endpointMode === 'configured') {
    process.env.AWS_ENDPOINT_URL_SQS = endpoint;
  } else {
    throw new Error(`unknown endpointMode ${endpointMode}`);
  }
  const client = new v3.SQSClient(config);
  const requests = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const r = args.request;
      const rec = {
        op: context.commandName?.replace(/Command$/, ''),
        method: r.method,
        hostname: r.hostname,
        port: Number(r.port),
        path: r.path,
        headers: { ...r.headers },
        body: typeof r.body === 'string' ? r.body : undefined,
      };
      requests.push(rec);
      try {
        const out = await next(args);
        rec.status = out.response?.statusCode;
        rec.responseHeaders = out.response?.headers;
        return out;
      } catch (err) {
        rec.status = err.$response?.statusCode ?? err.$metadata?.httpStatusCode;
        rec.responseHeaders = err.$response?.headers;
        throw err;
      }
    },
    { step: 'finalizeRequest', name: 'sluiceRequestRecorder', priority: 'low' },
  );
  return {
    kind: 'v3',
    label: `JS SDK v3 ${V3_VERSION} (AWS JSON 1.0, ${endpointMode} endpoint)`,
    protocol: 'json',
    client,
    logger,
    requests,
    endpoint,
    call(op, input = {}) {
      const Command = v3[`${op}Command`];
      if (!Command) throw new Error(`no ${op}Command in @aws-sdk/client-sqs`);
      return client.send(new Command(input));
    },
    /** Binary attribute value as this SDK takes it. */
    bin: (bytes) => Uint8Array.from(bytes),
    destroy: () => client.destroy(),
  };
}

/** JS SDK v2 client (query protocol). */
export function makeV2(endpoint) {
  const client = new SQSv2({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    maxRetries: 0,
    // The default, spelled out: v2 checks MD5OfMessageBody of SendMessage,
    // SendMessageBatch and ReceiveMessage (lib/services/sqs.js).
    computeChecksums: true,
    httpOptions: { connectTimeout: 5000, timeout: 60_000 },
  });
  const requests = [];
  client.customizeRequests((req) => {
    const rec = { op: req.operation[0].toUpperCase() + req.operation.slice(1) };
    requests.push(rec);
    req.on('send', () => {
      const h = req.httpRequest;
      rec.method = h.method;
      rec.hostname = h.endpoint.hostname;
      rec.port = Number(h.endpoint.port);
      rec.path = h.path;
      rec.headers = { ...h.headers };
      rec.body = typeof h.body === 'string' ? h.body : String(h.body ?? '');
    });
    req.on('complete', (resp) => {
      rec.status = resp.httpResponse.statusCode;
      rec.responseHeaders = resp.httpResponse.headers;
    });
  });
  return {
    kind: 'v2',
    label: `JS SDK v2 ${V2_VERSION} (query)`,
    protocol: 'query',
    client,
    requests,
    endpoint,
    call(op, input = {}) {
      const fn = client[lowerFirst(op)];
      if (typeof fn !== 'function') throw new Error(`no ${lowerFirst(op)} in aws-sdk v2 SQS`);
      return fn.call(client, input).promise();
    },
    bin: (bytes) => Buffer.from(bytes),
    destroy: () => {},
  };
}

/** Both SDKs, the way each test file runs its tests. */
export const SDK_KINDS = [
  ['v3', (ep) => makeV3(ep)],
  ['v2', (ep) => makeV2(ep)],
];

export { v3 as v3Module, SQSv2 };

export function queueArn(name) {
  return `arn:aws:sqs:${REGION}:${ACCOUNT_ID}:${name}`;
}
