// A client whose ALPN list shares no protocol with a sidecar listener gets the TLS alert no_application_protocol and
// is counted under that reason, not protocol_version (which says the TLS version was refused): on the mesh inbound,
// on the inbound with TCP tunnels (same port, tunnel ALPNs added) and on the external listener. A real TLS-version
// refusal still counts protocol_version.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import {
  available,
  type InboundServer,
  runCommand,
  startApp,
  startInboundServer,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import type { TestCa } from '../helpers/test-ca.js';

const HAVE_OPENSSL = available('openssl');
if (!HAVE_OPENSSL) console.warn('alpn-refused-reason: openssl not on PATH, skipping');

type Listener = 'inbound' | 'inbound with tcp' | 'external';

let ca: TestCa;
let app: TestApp;
let tcpApp: TestApp; // inbound.tcp needs a service of its own; nothing is expected to reach it
let mesh: TestSidecar; // inbound offers h2, http/1.1
let tunnels: TestSidecar; // inbound offers h2, http/1.1, meshauth-tcp/2, meshauth-tcp/1; external h2, http/1.1
let dir: string; // the inbound server's, with the external listener's certificate added
let client: { cert: string; key: string };
let inbound: InboundServer;

beforeAll(async () => {
  inbound = await startInboundServer();
  ({ ca, app, sidecar: mesh, clientFiles: client, dir } = inbound);
  tcpApp = await startApp();
  const external = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'external.crt'), external.chainPem);
  writeFileSync(join(dir, 'external.key'), external.keyPem, { mode: 0o600 });
  const issuer = 'https://issuer.example';
  const config = sidecarConfigFromObject(
    {
      trustDomain: ca.trustDomain.toString(),
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        tcp: { app: `127.0.0.1:${tcpApp.port}` },
        endUser: {
          issuers: [{ issuer, audiences: ['api'], algorithms: ['ES256'], jwksUri: `${issuer}/jwks` }],
        },
        external: { listen: '127.0.0.1:0', cert: join(dir, 'external.crt'), key: join(dir, 'external.key') },
      },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'alpn-refused-reason.yaml',
  );
  tunnels = await startTestSidecar(ca, ca.idFor('/ns/data/sa/db'), config);
});
afterAll(async () => {
  await tunnels?.sidecar.close(0);
  await tcpApp?.close();
  await inbound?.close();
});

function target(listener: Listener): { sidecar: TestSidecar; port: number; direction: string } {
  if (listener === 'inbound') return { sidecar: mesh, port: mesh.sidecar.inboundPort, direction: 'inbound' };
  if (listener === 'inbound with tcp') {
    return { sidecar: tunnels, port: tunnels.sidecar.inboundPort, direction: 'inbound' };
  }
  return { sidecar: tunnels, port: tunnels.sidecar.externalPort ?? 0, direction: 'external' };
}

/** The listener's refused handshakes under `reason`, or under any reason when it is undefined. */
async function failures(sidecar: TestSidecar, direction: string, reason?: string): Promise<number> {
  const { values } = await sidecar.metrics.tlsHandshakeFailures.get();
  return values
    .filter((v) => v.labels.direction === direction && (reason === undefined || v.labels.reason === reason))
    .reduce((sum, v) => sum + v.value, 0);
}

// The client SVID goes with every attempt: the refusal is about the protocols, not a missing certificate.
const BOGUS_ALPN = ['-alpn', 'bogus/1'];
// OpenSSL 3 offers no TLS 1.1 at its default security level: SECLEVEL=0 lets the ClientHello leave.
const TLS_1_1 = ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'];

const refusals: Array<[string, Listener, string[], RegExp, string]> = [
  [
    'fail/inbound, ALPN bogus/1 → no_application_protocol',
    'inbound',
    BOGUS_ALPN,
    /no application protocol|alert number 120/,
    'no_application_protocol',
  ],
  [
    'fail/inbound with TCP tunnels, ALPN bogus/1 → no_application_protocol',
    'inbound with tcp',
    BOGUS_ALPN,
    /no application protocol|alert number 120/,
    'no_application_protocol',
  ],
  [
    'fail/external, ALPN bogus/1 → no_application_protocol',
    'external',
    BOGUS_ALPN,
    /no application protocol|alert number 120/,
    'no_application_protocol',
  ],
  [
    'fail/inbound, TLS 1.1 only → protocol_version',
    'inbound',
    TLS_1_1,
    /protocol version|alert number 70/,
    'protocol_version',
  ],
];

describe('the reason counted for a refused ALPN or TLS version', () => {
  it.skipIf(!HAVE_OPENSSL).each(refusals)('%s', async (_name, listener, args, said, reason) => {
    const { sidecar, port, direction } = target(listener);
    const seen = app.seen.length + tcpApp.seen.length;
    const before = await failures(sidecar, direction, reason);
    const beforeAny = await failures(sidecar, direction);
    const result = await runCommand(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-cert',
        client.cert,
        '-cert_chain',
        client.cert,
        '-key',
        client.key,
        ...args,
        '-brief',
      ],
      { input: 'GET / HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n' },
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(said);
    await expect.poll(() => failures(sidecar, direction, reason), { timeout: 2_000, interval: 20 }).toBe(before + 1);
    // Counted once, under that reason alone.
    expect(await failures(sidecar, direction)).toBe(beforeAny + 1);
    expect(app.seen.length + tcpApp.seen.length).toBe(seen);
  });
});
