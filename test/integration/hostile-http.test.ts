// Hostile HTTP at the inbound listener that the other suites leave out, each through real sockets with its JSON error,
// its metric and the app untouched: path tricks against a real policy file, slowloris (408), CONNECT and non-token
// methods, an app that answers with broken framing (502).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarConfig, sidecarConfigFromObject } from '../../src/config/index.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const CLIENT = `spiffe://${TD}/ns/shop/sa/client`;

function policyConfig(appPort: number, policyFile: string): SidecarConfig {
  return sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${appPort}`, policy: policyFile },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'hostile-http',
  );
}

const POLICY = [
  'apiVersion: meshauth.dev/v1',
  'kind: Policy',
  'rules:',
  '  - name: public',
  '    action: allow',
  `    from: { ids: ["${CLIENT}"] }`,
  '    to: { paths: ["/public/*"] }',
  '  - name: no-admin',
  '    action: deny',
  '    to: { paths: ["/admin", "/admin/*"] }',
].join('\n');

describe('inbound with a policy: path tricks, slow headers, methods', () => {
  let ca: TestCa;
  let dir: string;
  let app: TestApp;
  let sidecar: TestSidecar;
  let client: TestSvid;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-hostile-http-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    app = await startApp();
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/server'), policyConfig(app.port, policyFile), {
      inboundLimits: { headersTimeoutMs: 300 },
    });
    client = await ca.issue({ id: CLIENT });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (target: string) =>
    rawTlsExchange(
      sidecar.sidecar.inboundPort,
      client,
      ca.bundlePem,
      `GET ${target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n`,
    );
  const metric = (name: string) => sidecar.metrics.registry.getSingleMetricAsString(name);
  const counterValue = async (name: string, labels: string): Promise<number> => {
    const line = (await metric(name)).split('\n').find((l) => l.includes(labels));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };

  // [name, request-target, status, code (fail) or the path the app receives (ok), deciding rule]
  const paths: Array<[string, string, number, string, string]> = [
    ['ok/allowed path', '/public/x', 200, '/public/x', 'public'],
    ['ok/dot segment inside the allowed tree is forwarded normalized', '/public/./a/../x', 200, '/public/x', 'public'],
    [
      // Decoded once only (P03), and refused: an app that decodes once more reads %2e%2e, a dot segment to its URL parser.
      'fail/double-encoded dots (P03)',
      '/public/%252e%252e/admin',
      400,
      'MESHAUTH_ERR_PATH_AMBIGUOUS',
      'path-normalization',
    ],
    ['fail/dot-dot out of the allowed tree (P01)', '/public/../admin', 403, 'MESHAUTH_ERR_FORBIDDEN', 'no-admin'],
    ['fail/encoded dot-dot (P02)', '/public/%2e%2e/admin', 403, 'MESHAUTH_ERR_FORBIDDEN', 'no-admin'],
    ['fail/upper-case encoded dot-dot (P02)', '/public/%2E%2E/admin/x', 403, 'MESHAUTH_ERR_FORBIDDEN', 'no-admin'],
    ['fail/leading double slash (P04)', '//admin', 403, 'MESHAUTH_ERR_FORBIDDEN', 'no-admin'],
    ['fail/merged slashes then dot-dot (P04)', '/public//../admin', 403, 'MESHAUTH_ERR_FORBIDDEN', 'no-admin'],
    ['fail/case variant is another path (P06)', '/ADMIN', 403, 'MESHAUTH_ERR_FORBIDDEN', 'default-deny'],
    ['fail/encoded slash (P05)', '/admin%2Fsettings', 400, 'MESHAUTH_ERR_PATH_AMBIGUOUS', 'path-normalization'],
    [
      'fail/encoded slash dot-dot (P05)',
      '/public%2F..%2Fadmin',
      400,
      'MESHAUTH_ERR_PATH_AMBIGUOUS',
      'path-normalization',
    ],
    ['fail/encoded backslash (P05)', '/public/..%5Cadmin', 400, 'MESHAUTH_ERR_PATH_AMBIGUOUS', 'path-normalization'],
    ['fail/encoded NUL (H12)', '/public/x%00', 400, 'MESHAUTH_ERR_PATH_AMBIGUOUS', 'path-normalization'],
  ];
  it.each(paths)('%s: %s', async (name, target, status, expected, rule) => {
    const seen = app.seen.length;
    const decision = name.startsWith('ok/') ? 'allow' : 'deny';
    const decisionsBefore = await counterValue(
      'meshauth_authz_decisions_total',
      `decision="${decision}",rule="${rule}"`,
    );
    const rejectedBefore = await counterValue('meshauth_requests_rejected_total', `code="${expected}"`);
    const reply = await get(target);
    expect(reply.split('\r\n', 1)[0]).toBe(`HTTP/1.1 ${status} ${status === 200 ? 'OK' : STATUS_TEXT[status]}`);
    if (name.startsWith('ok/')) {
      expect(app.seen.length).toBe(seen + 1);
      expect(app.seen.at(-1)?.url).toBe(expected);
    } else {
      expect(app.seen.length).toBe(seen);
      expect(JSON.parse(body(reply))).toMatchObject({ code: expected });
      expect(await counterValue('meshauth_requests_rejected_total', `code="${expected}"`)).toBe(rejectedBefore + 1);
    }
    expect(await counterValue('meshauth_authz_decisions_total', `decision="${decision}",rule="${rule}"`)).toBe(
      decisionsBefore + 1,
    );
  });

  it('fail/slowloris: headers never finish → 408 MESHAUTH_ERR_REQUEST_TIMEOUT as JSON, counted (H09)', async () => {
    const seen = app.seen.length;
    const before = await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_REQUEST_TIMEOUT"');
    const reply = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      client,
      ca.bundlePem,
      'GET /public/x HTTP/1.1\r\nHost: b\r\nX-Slow: 1',
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(JSON.parse(body(reply))).toEqual({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT', message: 'request timed out' });
    expect(app.seen.length).toBe(seen);
    expect(await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_REQUEST_TIMEOUT"')).toBe(
      before + 1,
    );
  });

  it('fail/CONNECT over HTTP/1.1 → 400 MESHAUTH_ERR_METHOD_INVALID, counted, no tunnel (H14)', async () => {
    const before = await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"');
    const reply = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      client,
      ca.bundlePem,
      'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n',
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(body(reply))).toEqual({ code: 'MESHAUTH_ERR_METHOD_INVALID', message: 'invalid request method' });
    expect(await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"')).toBe(
      before + 1,
    );
  });

  // Node's HTTP/1.1 parser refuses these heads itself: the refusal is the one h2 gets for the same method.
  it.each([
    ['fail/unknown method over HTTP/1.1', 'FOO'],
    ['fail/lower-case method over HTTP/1.1', 'get'],
    ['fail/mixed-case method over HTTP/1.1', 'GeT'],
  ])('%s → 400 MESHAUTH_ERR_METHOD_INVALID, counted (H14)', async (_name, method) => {
    const seen = app.seen.length;
    const before = await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"');
    const reply = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      client,
      ca.bundlePem,
      `${method} /public/x HTTP/1.1\r\nHost: b\r\n\r\n`,
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(body(reply))).toEqual({ code: 'MESHAUTH_ERR_METHOD_INVALID', message: 'invalid request method' });
    expect(app.seen.length).toBe(seen);
    expect(await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"')).toBe(
      before + 1,
    );
  });

  const h2Methods: Array<[string, Record<string, string>]> = [
    ['fail/lower-case method over h2', { ':method': 'get', ':path': '/public/x' }],
    ['fail/mixed-case method over h2', { ':method': 'GeT', ':path': '/public/x' }],
    ['fail/CONNECT over h2', { ':method': 'CONNECT', ':authority': '127.0.0.1:22' }],
    // HTTP/1.1 cannot carry a method Node's parser does not know; h2 forwarded it to the app.
    ['fail/unknown method over h2', { ':method': 'FOO', ':path': '/public/x' }],
  ];
  it.each(h2Methods)('%s → 400 MESHAUTH_ERR_METHOD_INVALID, counted (H14)', async (_name, headers) => {
    const seen = app.seen.length;
    const before = await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"');
    const session = h2Connect(`https://127.0.0.1:${sidecar.sidecar.inboundPort}`, {
      cert: client.chainPem,
      key: client.keyPem,
      ca: [ca.bundlePem],
      checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
    });
    session.on('error', () => undefined);
    try {
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const stream = session.request(headers, { endStream: true });
        let status = 0;
        let text = '';
        stream.on('response', (h: IncomingHttpHeaders) => {
          status = Number(h[':status']);
        });
        stream.on('data', (d: Buffer) => {
          text += d.toString();
        });
        stream.on('end', () => resolve({ status, text }));
        stream.on('error', reject);
      });
      expect(status).toBe(400);
      expect(JSON.parse(text)).toEqual({ code: 'MESHAUTH_ERR_METHOD_INVALID', message: 'invalid request method' });
    } finally {
      session.close();
    }
    expect(app.seen.length).toBe(seen);
    expect(await counterValue('meshauth_requests_rejected_total', 'code="MESHAUTH_ERR_METHOD_INVALID"')).toBe(
      before + 1,
    );
  });
});

describe('inbound: an app that answers with broken framing (H15)', () => {
  let ca: TestCa;
  let badApp: NetServer;
  let sidecar: TestSidecar;
  let client: TestSvid;

  // Answers by the request path: broken responses for /cl-te and /bad-status, a proper one for anything else.
  const RESPONSES: Readonly<Record<string, string>> = {
    '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '/bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
    '/bad-header': 'HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n',
  };

  beforeAll(async () => {
    ca = await TestCa.create();
    badApp = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (d: Buffer) => {
        const path = d.toString('latin1').split(' ', 2)[1] ?? '/';
        socket.end(RESPONSES[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => badApp.listen(0, '127.0.0.1', resolve));
    const appPort = (badApp.address() as { port: number }).port;
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/a/sa/server'), testConfig({ appPort }));
    client = await ca.issue({ id: ca.idFor('/ns/a/sa/client') });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await new Promise((resolve) => badApp?.close(resolve));
  });

  it.each([
    ['fail/Content-Length with Transfer-Encoding', '/cl-te'],
    ['fail/four-digit status', '/bad-status'],
    ['fail/space before the header colon', '/bad-header'],
  ])('%s → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL, counted; the sidecar keeps serving', async (_name, path) => {
    const rejected = async () => {
      const { values } = await sidecar.metrics.requestsRejected.get();
      return values.find((v) => v.labels.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL')?.value ?? 0;
    };
    const before = await rejected();
    const send = (target: string) =>
      rawTlsExchange(
        sidecar.sidecar.inboundPort,
        client,
        ca.bundlePem,
        `GET ${target} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n`,
      );
    const reply = await send(path);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 502 Bad Gateway');
    expect(JSON.parse(body(reply))).toEqual({
      code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL',
      message: 'upstream sent an invalid response',
    });
    expect(await rejected()).toBe(before + 1);
    expect((await send('/ok')).split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
  });
});

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 403: 'Forbidden' };

function body(reply: string): string {
  return reply.slice(reply.indexOf('\r\n\r\n') + 4);
}
