// Two `authorization` lines are refused before any is verified, over HTTP/2 as over HTTP/1.1: node:http2 keeps only the
// first line of a repeated `authorization` in its header object, so the end-user step must read the decoded list, or an
// h2 caller's second token would pass unseen by the check that refuses two.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { runCommand, startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid, writeSvidFiles } from '../helpers/test-ca.js';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'shop';
const cleanups: (() => Promise<void> | void)[] = [];
let ca: TestCa;
let app: TestApp;
let sidecar: TestSidecar;
let caller: TestSvid;
let key: SigningKey;
let token: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-dup-authz-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  key = await signingKey('k1');
  token = await endUserToken(key, ISSUER, AUDIENCE);
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, jwksText(key));
  ca = await TestCa.create('example.org');
  app = await startApp();
  cleanups.push(() => app.close());
  const config = sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        endUser: {
          issuers: [
            { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: pathToFileURL(jwks).href },
          ],
        },
      },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'duplicate-authorization-test',
  );
  sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/orders'), config);
  cleanups.push(() => sidecar.sidecar.close(0));
  caller = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
});

afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function h2Get(session: ClientHttp2Session, authorization: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ':path': '/orders', authorization });
    let status = 0;
    let body = '';
    stream.on('response', (headers: IncomingHttpHeaders) => {
      status = Number(headers[':status']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end();
  });
}

describe('a repeated authorization header', () => {
  it('ok/one bearer token over h2 is verified and the request served', async () => {
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, caller, ca.bundlePem);
    try {
      expect((await h2Get(session, `Bearer ${token}`)).status).toBe(200);
    } finally {
      session.close();
    }
  });

  // node:http2's own client refuses to send a single-value header twice; curl sends each -H line as given.
  it('fail/two authorization lines over h2 (curl) → 400 MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED, nothing reaches the app', async () => {
    const seen = app.seen.length;
    const files = writeSvidFiles(dir, 'caller', caller);
    const result = await runCommand('curl', [
      ...['-sk', '--http2', '--max-time', '5', '--cert', files.cert, '--key', files.key],
      ...[
        '-H',
        `Authorization: Bearer ${token}`,
        '-H',
        'Authorization: Bearer other',
        '-w',
        '\n%{http_version} %{http_code}',
      ],
      `https://127.0.0.1:${sidecar.sidecar.inboundPort}/orders`,
    ]);
    const [body, versionAndStatus] = result.stdout.split('\n');
    expect(versionAndStatus).toBe('2 400');
    expect(JSON.parse(body as string).code).toBe('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED');
    expect(app.seen.length).toBe(seen);
  });

  it('fail/the same over HTTP/1.1 → 400', async () => {
    const seen = app.seen.length;
    const reply = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      caller,
      ca.bundlePem,
      `GET /orders HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer ${token}\r\nauthorization: Bearer other\r\nConnection: close\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED');
    expect(app.seen.length).toBe(seen);
  });
});
