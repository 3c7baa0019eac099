// The queue bound of the app hop on the external listener, where the caller is the verified end user: with its
// share in flight (3 of appConnections 4) and four times that waiting (12), one more request of the same user is
// answered 503 MESHAUTH_ERR_UPSTREAM_BUSY with Retry-After, also over HTTP/2 (its clients are not sidecars, so no
// REFUSED_STREAM), and never reaches the app; another user keeps its own share.
// Found in review: nothing bounded the waiting requests of one caller but its connections × streams.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { type ClientHttp2Session, connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/wait.js';

const SHARE = 3;
const WAITING = 12;
const ISSUER = 'https://issuer.test';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(session: ClientHttp2Session, token: string, settled: Answer[]): Promise<Answer> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'GET', ':path': '/', authorization: `Bearer ${token}` });
    const answer: Answer = { status: 0, headers: {}, body: '' };
    stream.on('response', (headers) => {
      answer.status = Number(headers[':status']);
      answer.headers = headers;
    });
    stream.on('data', (chunk: Buffer) => {
      answer.body += chunk.toString();
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      settled.push(answer);
      resolve(answer);
    });
  });
}

describe('the app queue of one end user on the external listener', () => {
  let ca: TestCa;
  let key: SigningKey;
  let sidecar: TestSidecar;
  let dir: string;
  const held: ServerResponse[] = [];
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    held.push(res);
  });
  let session: ClientHttp2Session;

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    dir = mkdtempSync(join(tmpdir(), 'meshauth-peer-queue-'));
    key = await signingKey('k1');
    writeFileSync(join(dir, 'jwks.json'), jwksText(key));
    const cert = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'c.crt'), cert.chainPem);
    writeFileSync(join(dir, 'c.key'), cert.keyPem, { mode: 0o600 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${(server.address() as AddressInfo).port}`,
          endUser: {
            issuers: [
              {
                issuer: ISSUER,
                jwksUri: `file://${join(dir, 'jwks.json')}`,
                audiences: ['api'],
                algorithms: ['ES256'],
              },
            ],
          },
          external: { listen: '127.0.0.1:0', cert: join(dir, 'c.crt'), key: join(dir, 'c.key') },
        },
        outbound: { listen: '127.0.0.1:0', routes: {} },
        admin: { listen: '127.0.0.1:0' },
      },
      'external.yaml',
    );
    sidecar = await startTestSidecar(ca, 'spiffe://example.org/ns/a/sa/api', config, {
      inboundLimits: { appConnections: 4 },
    });
    session = h2Connect(`https://127.0.0.1:${sidecar.sidecar.externalPort}`, { ca: [ca.bundlePem] });
    session.on('error', () => undefined);
  });
  afterAll(async () => {
    for (const res of held.splice(0)) res.end('ok');
    session?.close();
    await sidecar?.sidecar.close(0);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('fail/one request past the bound: 503 with Retry-After over HTTP/2; the kept ones and another user served', async () => {
    const alice = await endUserToken(key, ISSUER, 'api', 'alice');
    const settled: Answer[] = [];
    const answers = Array.from({ length: SHARE + WAITING + 1 }, () => get(session, alice, settled));
    await until('the one past the bound answered', () => settled.length === 1 && held.length === SHARE);
    expect(settled[0]?.status).toBe(503);
    expect(settled[0]?.headers['retry-after']).toBe('1');
    expect(JSON.parse(settled[0]?.body ?? '')).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_BUSY' });
    const rejected = (await sidecar.metrics.requestsRejected.get()).values.find(
      (v) => v.labels.direction === 'external' && v.labels.code === 'MESHAUTH_ERR_UPSTREAM_BUSY',
    );
    expect(rejected?.value).toBe(1);
    // Bob is another caller: his request goes to the app beside alice's share.
    const bob = get(session, await endUserToken(key, ISSUER, 'api', 'bob'), settled);
    await until('bob at the app', () => held.length === SHARE + 1);
    await until('every kept request answered', () => {
      for (const res of held.splice(0)) res.end('ok');
      return settled.length === SHARE + WAITING + 2;
    });
    expect((await bob).status).toBe(200);
    expect((await Promise.all(answers)).filter((answer) => answer.status === 200)).toHaveLength(SHARE + WAITING);
    expect(urls).toHaveLength(SHARE + WAITING + 1);
  });
});
