// An Agent against a hostile or broken CA: an HTTPS server holding a serving certificate for the CA's SPIFFE ID
// under the agent's own bundle (TLS succeeds, as for a compromised or buggy replica), whose answers to POST
// /v1/svid and GET /v1/bundle the test scripts. Whatever it answers, the agent keeps serving with the SVID it has,
// counts the refusal and says why in a log line, and tries again before that SVID expires.
// Every test has a server, an agent and a cleanup list of its own, so the tests (which mostly wait for a renewal at
// half of a 4-second SVID) run side by side, as many at once as vitest's `maxConcurrency` lets them; they take
// `expect` from their context, as concurrent tests must.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, it, type TestContext } from 'vitest';
import { MIN_DELAY_MS, RENEWAL_FRACTION_MIN } from '../../src/agent/schedule.js';
import {
  generateKeyPair,
  importPrivateKeyPem,
  KEY_ALGORITHMS,
  randomSerialHex,
  uriNameConstraintsExtension,
  verifyCsrPem,
  x509,
} from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void | Promise<void>;

let ca: TestCa;
/** The scripted CAs' serving certificate (for the CA's SPIFFE ID, under the test CA), shared by every test. */
let serving: { readonly chainPem: string; readonly keyPem: string };
/** A root the test CA is not under. */
let otherRoot: x509.X509Certificate;
/**
 * Renewal comes at about half of it, 1.5–2 s into a test (NotAfter has whole seconds): each test waits for it, so a
 * longer one only makes every test longer. Its second half leaves the agent time to be refused, and to retry.
 */
const SVID_TTL_MS = 4_000;
/** The refused attempts that fit between a renewal and the SVID's expiry, 250 ms apart at least (10 for 4 s). */
const MAX_REFUSED_RETRIES = Math.floor(((1 - RENEWAL_FRACTION_MIN) * SVID_TTL_MS) / MIN_DELAY_MS) + 2;

interface Signer {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
}

/** A CA certificate signed by `issuer` (self-signed without one), optionally with URI name constraints. */
async function caCert(
  issuer: Signer | undefined,
  permittedHosts?: readonly string[],
  notAfter = new Date(Date.now() + 24 * 3600_000),
): Promise<Signer> {
  const keys = await generateKeyPair('p256');
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (permittedHosts !== undefined) extensions.push(uriNameConstraintsExtension(permittedHosts));
  const subject = `CN=hostile ${randomSerialHex().slice(0, 8)}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject,
    issuer: issuer?.cert.subjectName ?? subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: keys.publicKey,
    signingKey: issuer?.key ?? keys.privateKey,
    extensions,
  });
  return { cert, key: keys.privateKey };
}

/** A leaf for the CSR's key, signed by `issuer` (the test CA's intermediate by default). */
async function leafFor(
  csrPem: string,
  options: {
    id?: string;
    notBefore?: Date;
    notAfter?: Date;
    issuer?: Signer;
    /** Another key than the CSR's. */
    publicKey?: CryptoKey;
    isCa?: boolean;
  } = {},
): Promise<x509.X509Certificate> {
  const csr = await verifyCsrPem(csrPem);
  const issuer = options.issuer ?? {
    cert: ca.intermediate,
    key: (await importPrivateKeyPem(ca.intermediateKeyPem)).privateKey,
  };
  const now = Date.now();
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: '',
    issuer: issuer.cert.subjectName,
    notBefore: options.notBefore ?? new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + SVID_TTL_MS),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: options.publicKey ?? csr.publicKey,
    signingKey: issuer.key,
    extensions: [
      new x509.BasicConstraintsExtension(options.isCa ?? false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [{ type: 'url', value: options.id ?? ca.idFor('/ns/shop/sa/orders') }],
        true,
      ),
    ],
  });
}

/** The honest answer: a short-lived SVID for the CSR's key under the test CA's intermediate. */
const honest: Handler = async (request, body, response) => {
  if (request.method === 'POST') {
    const leaf = await leafFor((JSON.parse(body) as { csr: string }).csr);
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        certChain: [leaf.toString('pem'), ca.intermediatePem],
        bundle: [ca.rootPem],
        expiresAt: leaf.notAfter.toISOString(),
      }),
    );
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.rootPem] }));
};

beforeAll(async () => {
  ca = await TestCa.create();
  otherRoot = (await caCert(undefined)).cert;
  serving = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'], ttlMs: 3600_000 });
});

/** One test's CA: its own HTTPS server answering with whatever `handler` is when a request ends. */
interface ScriptedCa {
  readonly url: string;
  handler: Handler;
  /** The test's teardown (agent, directories, then the server), run when the test finishes. */
  readonly cleanups: Cleanup[];
}

async function scriptedCa(onTestFinished: TestContext['onTestFinished'], handler: Handler): Promise<ScriptedCa> {
  const cleanups: Cleanup[] = [];
  onTestFinished(() => runCleanups(cleanups));
  // The object returned, so that setting its `handler` scripts the answers from then on.
  const script = { handler };
  const server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void Promise.resolve(script.handler(request, Buffer.concat(chunks).toString('utf8'), response)).catch(() => {
        response.destroy();
      });
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(script, { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, cleanups });
}

/** An agent that bootstrapped against its own honest CA; `then` takes over for every later answer. */
async function bootstrapped(
  onTestFinished: TestContext['onTestFinished'],
  then: Handler,
  overrides: { requestTimeoutMs?: number; bundleRefreshMs?: number; maxBackoffMs?: number } = {},
) {
  const scripted = await scriptedCa(onTestFinished, honest);
  const harness = startAgent({ url: scripted.url, bundleFile: '' }, 'join-token', scripted.cleanups, {
    bundlePem: ca.bundlePem,
    bundleRefreshMs: 3_600_000,
    ...overrides,
  });
  await harness.agent.whenReady();
  scripted.handler = then;
  return harness;
}

describe.concurrent('agent against a CA that never finishes its answer', () => {
  it('fail/a renewal answer dripped one byte at a time is given up before the SVID expires', async ({
    expect,
    onTestFinished,
  }) => {
    const drip: Handler = (request, _body, response) => {
      if (request.method !== 'POST') return;
      response.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => response.write(' '), 50);
      response.on('close', () => clearInterval(timer));
    };
    const { holder, metrics, logs } = await bootstrapped(onTestFinished, drip, { requestTimeoutMs: 300 });
    const first = holder.current?.svid;
    // The renewal's answer never ends, its bytes coming faster than the idle timer: the attempt must still fail
    // (and be retried) while the SVID is valid. Waited for by the renewal's own log line, not by the failure count:
    // 300 ms also limits the bootstrap, which a loaded machine may let time out and retry before the agent is ready,
    // and that failure counted too, so the count was reached before any renewal was tried.
    const line = await waitFor(
      'a failed renewal',
      () => logs.find((l) => l.msg.startsWith('SVID renewal failed')),
      SVID_TTL_MS - 500,
    );
    // Given up while the SVID was still valid: a warning that keeps it, with life left.
    expect(line.level).toBe('warn');
    expect(line.svidRemainingMs).toBeGreaterThan(0);
    expect(holder.current?.svid).toBe(first);
    expect(await rotations(metrics, 'success')).toBe(1);
    expect(line.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(line.error).toContain('no complete answer');
  });
});

/** POST /v1/svid answered 200 with `answer(csr)` as its JSON body (or raw text when it returns a string). */
function svidAnswer(answer: (csrPem: string) => Promise<unknown>): Handler {
  return async (request, body, response) => {
    if (request.method !== 'POST') return honest(request, body, response);
    const value = await answer((JSON.parse(body) as { csr: string }).csr);
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(typeof value === 'string' ? value : JSON.stringify(value));
  };
}

function chainAnswer(chain: readonly x509.X509Certificate[], bundle = [ca.root]) {
  return {
    certChain: chain.map((c) => c.toString('pem')),
    bundle: bundle.map((c) => c.toString('pem')),
    expiresAt: chain[0]?.notAfter.toISOString(),
  };
}

async function realIntermediate(): Promise<Signer> {
  return { cert: ca.intermediate, key: (await importPrivateKeyPem(ca.intermediateKeyPem)).privateKey };
}

async function underRoot(permittedHosts?: readonly string[], notAfter?: Date): Promise<Signer> {
  return caCert(
    { cert: ca.root, key: (await importPrivateKeyPem(ca.rootKeyPem)).privateKey },
    permittedHosts,
    notAfter,
  );
}

const day = 24 * 3600_000;

describe.concurrent('agent against a CA answering renewal with a certificate it must not take', () => {
  it.for<[string, string, (csr: string) => Promise<unknown>]>([
    [
      'another SPIFFE ID',
      'id_changed',
      async (csr) => chainAnswer([await leafFor(csr, { id: ca.idFor('/ns/shop/sa/admin') }), ca.intermediate]),
    ],
    [
      'another trust domain',
      'trust_domain',
      async (csr) => chainAnswer([await leafFor(csr, { id: 'spiffe://evil.org/ns/shop/sa/orders' }), ca.intermediate]),
    ],
    [
      'a leaf without our CSR key',
      'wrong_key',
      async (csr) =>
        chainAnswer([await leafFor(csr, { publicKey: (await generateKeyPair('p256')).publicKey }), ca.intermediate]),
    ],
    [
      'a chain that does not reach the bundle',
      'unknown_ca',
      async (csr) => {
        const other = await caCert(undefined);
        const inter = await caCert(other);
        return chainAnswer([await leafFor(csr, { issuer: inter }), inter.cert]);
      },
    ],
    [
      'an intermediate constrained to another trust domain',
      'name_constraints',
      async (csr) => {
        const inter = await underRoot(['evil.org']);
        return chainAnswer([await leafFor(csr, { issuer: inter }), inter.cert]);
      },
    ],
    ['a CA:TRUE leaf', 'leaf_is_ca', async (csr) => chainAnswer([await leafFor(csr, { isCa: true }), ca.intermediate])],
    [
      'an expired leaf',
      'expired',
      async (csr) =>
        chainAnswer([
          await leafFor(csr, { notBefore: new Date(Date.now() - 2 * day), notAfter: new Date(Date.now() - day) }),
          ca.intermediate,
        ]),
    ],
    [
      'a leaf valid from tomorrow',
      'not_yet_valid',
      async (csr) =>
        chainAnswer([
          await leafFor(csr, { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 2 * day) }),
          ca.intermediate,
        ]),
    ],
    [
      'a chain of 50 certificates',
      'chain_too_long',
      async (csr) => {
        let last = await realIntermediate();
        const cas: Signer[] = [last];
        for (let i = 0; i < 48; i++) {
          last = await caCert(last);
          cas.push(last);
        }
        const leaf = await leafFor(csr, { issuer: last });
        return {
          ...chainAnswer([leaf]),
          certChain: [[leaf, ...cas.map((c) => c.cert).reverse()].map((c) => c.toString('pem')).join('\n')],
        };
      },
    ],
    ['a body over the size limit', 'malformed', async () => `{"certChain":["${'A'.repeat(2 * 1024 * 1024)}"]}`],
    ['a body that is not JSON', 'malformed', async () => '{"certChain": ['],
    [
      'an empty bundle',
      'malformed',
      async (csr) => ({ ...chainAnswer([await leafFor(csr), ca.intermediate]), bundle: [] }),
    ],
  ])(
    'fail/%s → refused (%s), counted, logged, the current SVID kept',
    async ([_name, reason, answer], { expect, onTestFinished }) => {
      const { holder, metrics, logs } = await bootstrapped(onTestFinished, svidAnswer(answer));
      const first = holder.current?.svid;
      await waitFor('a refused renewal', async () => (await rotations(metrics, 'failure')) >= 1, SVID_TTL_MS - 500);
      expect(holder.current?.svid).toBe(first);
      expect(await rotations(metrics, 'success')).toBe(1);
      const line = logs.find((l) => l.msg.startsWith('SVID renewal failed'));
      expect(line?.level).toBe('warn');
      expect(line?.code).toBe('MESHAUTH_ERR_CA_RESPONSE_INVALID');
      expect(line?.reason).toBe(reason);
    },
  );
});

describe.concurrent('agent against a CA that refuses with a code a CA does not answer with', () => {
  it.for([
    ['a local error', 'MESHAUTH_ERR_USAGE'],
    ["another component's refusal", 'MESHAUTH_ERR_FORBIDDEN'],
  ] as const)(
    "fail/a 401 naming %s (%s) is the CA's invalid answer",
    async ([_what, caCode], { expect, onTestFinished }) => {
      // Found in review: any code of ours was kept, so a CA could make `meshauth cert renew` report a wrong flag and
      // exit 2. Only the codes a CA answers with are kept; the CA's words stay in the message and the detail.
      const { holder, metrics, logs } = await bootstrapped(onTestFinished, (_request, _body, response) => {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ code: caCode, message: 'unknown flag' }));
      });
      const first = holder.current?.svid;
      await waitFor('a refused renewal', async () => (await rotations(metrics, 'failure')) >= 1, SVID_TTL_MS - 500);
      expect(holder.current?.svid).toBe(first);
      const line = logs.find((l) => l.msg.startsWith('SVID renewal failed'));
      expect(line?.code).toBe('MESHAUTH_ERR_CA_RESPONSE_INVALID');
      expect(line?.reason).toBe('http_401');
      expect(line?.caCode).toBe(caCode);
    },
  );
});

describe.concurrent('agent against a CA that refuses a renewal, then bootstraps another identity', () => {
  it('fail/the bootstrap after the refusal must return the ID the agent held: another is refused, the SVID kept', async ({
    expect,
    onTestFinished,
  }) => {
    // Found in review: a refused renewal (401) sends the agent to bootstrap, whose answer used to be taken with any
    // ID of the trust domain, so a CA could move a workload to another identity in two answers.
    const { holder, metrics, logs } = await bootstrapped(onTestFinished, async (request, body, response) => {
      if (request.method !== 'POST') return honest(request, body, response);
      const parsed = JSON.parse(body) as { csr: string; token?: string };
      if (parsed.token === undefined) {
        response
          .writeHead(401, { 'content-type': 'application/json' })
          .end(JSON.stringify({ code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED', message: 'renewal refused' }));
        return;
      }
      const leaf = await leafFor(parsed.csr, { id: ca.idFor('/ns/kube-system/sa/admin') });
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(chainAnswer([leaf, ca.intermediate])));
    });
    const first = holder.current?.svid;
    await waitFor(
      'a refused bootstrap',
      () => logs.some((l) => l.mode === 'bootstrap' && l.reason === 'id_changed'),
      SVID_TTL_MS - 500,
    );
    expect(holder.current?.svid).toBe(first);
    expect(await rotations(metrics, 'success')).toBe(1);
  });
});

describe.concurrent('agent against a CA whose leaf outlives the chain above it', () => {
  it('ok/an SVID under a root that ends in seconds is held only until that root ends', async ({
    expect,
    onTestFinished,
  }) => {
    // Found in review: the SVID's end took the intermediates into account but not the root the path ends at, so an
    // agent held (and /readyz reported) an SVID that every peer refused once that root expired.
    let rootNotAfter = new Date(0);
    const { holder, metrics } = await bootstrapped(
      onTestFinished,
      svidAnswer(async (csr) => {
        rootNotAfter = new Date(Date.now() + 60_000);
        const root = await caCert(undefined, undefined, rootNotAfter);
        const inter = await caCert(root);
        const leaf = await leafFor(csr, { issuer: inter, notAfter: new Date(Date.now() + 3600_000) });
        return chainAnswer([leaf, inter.cert], [ca.root, root.cert]);
      }),
    );
    await waitFor(
      'the renewal under the short root',
      async () => (await rotations(metrics, 'success')) >= 2,
      SVID_TTL_MS,
    );
    expect(holder.current?.svid.notAfter.getTime()).toBeLessThanOrEqual(rootNotAfter.getTime());
  });

  it('ok/a 10-year leaf under an intermediate of seconds is renewed before that intermediate expires', async ({
    expect,
    onTestFinished,
  }) => {
    let intermediateNotAfter = new Date(0);
    const { holder, metrics } = await bootstrapped(
      onTestFinished,
      svidAnswer(async (csr) => {
        intermediateNotAfter = new Date(Date.now() + 4_000);
        const inter = await underRoot(undefined, intermediateNotAfter);
        return chainAnswer([
          await leafFor(csr, { issuer: inter, notAfter: new Date(Date.now() + 3650 * day) }),
          inter.cert,
        ]);
      }),
    );
    await waitFor(
      'the renewal to the 10-year leaf',
      async () => (await rotations(metrics, 'success')) >= 2,
      SVID_TTL_MS,
    );
    // Peers stop accepting the chain when its intermediate expires: that, not the leaf's NotAfter, is when it ends.
    const held = holder.current?.svid;
    expect(held?.notAfter.getTime()).toBeLessThanOrEqual(intermediateNotAfter.getTime());
    const expires = intermediateNotAfter.getTime();
    await waitFor(
      'a renewal before the intermediate expires',
      async () => (await rotations(metrics, 'success')) >= 3,
      4_000,
    );
    expect(Date.now()).toBeLessThan(expires);
    expect(await rotations(metrics, 'failure')).toBe(0);
  });
});

describe.concurrent('agent against a CA whose bundle drops the root it is itself under', () => {
  it('fail/a bundle refresh swapping our root for another is refused; renewals keep reaching the CA', async ({
    expect,
    onTestFinished,
  }) => {
    const other = await caCert(undefined);
    let swapped = false;
    const { holder, metrics, logs } = await bootstrapped(
      onTestFinished,
      (request, body, response) => {
        if (request.method !== 'GET' || swapped) return honest(request, body, response);
        swapped = true;
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ bundle: [other.cert.toString('pem')] }));
      },
      { bundleRefreshMs: 1_000 },
    );
    const refused = await waitFor('the refused bundle', () =>
      logs.find((l) => l.msg.startsWith('trust bundle refresh failed')),
    );
    expect(refused.code).toBe('MESHAUTH_ERR_CA_RESPONSE_INVALID');
    expect(refused.reason).toBe('bundle_without_ca_root');
    expect(holder.current?.bundle.hasRoot(ca.root)).toBe(true);
    expect(holder.current?.bundle.hasRoot(other.cert)).toBe(false);
    await waitFor('the next renewal', async () => (await rotations(metrics, 'success')) >= 2, SVID_TTL_MS);
    expect(await rotations(metrics, 'failure')).toBe(0);
  });

  it('fail/a renewal answer under another root only is refused, the current SVID kept', async ({
    expect,
    onTestFinished,
  }) => {
    const other = await caCert(undefined);
    const inter = await caCert(other);
    const { holder, metrics, logs } = await bootstrapped(
      onTestFinished,
      svidAnswer(async (csr) => chainAnswer([await leafFor(csr, { issuer: inter }), inter.cert], [other.cert])),
    );
    const first = holder.current?.svid;
    await waitFor('a refused renewal', async () => (await rotations(metrics, 'failure')) >= 1, SVID_TTL_MS - 500);
    expect(holder.current?.svid).toBe(first);
    expect(holder.current?.bundle.hasRoot(ca.root)).toBe(true);
    const line = logs.find((l) => l.msg.startsWith('SVID renewal failed'));
    expect(line?.code).toBe('MESHAUTH_ERR_CA_RESPONSE_INVALID');
    expect(line?.reason).toBe('bundle_without_ca_root');
  });
});

describe.concurrent('agent bootstrapping against a CA whose bundle drops the root it is served under', () => {
  it('fail/the bootstrap answer under another root only is refused; nothing is installed', async ({
    expect,
    onTestFinished,
  }) => {
    const other = await caCert(undefined);
    const inter = await caCert(other);
    const scripted = await scriptedCa(
      onTestFinished,
      svidAnswer(async (csr) => chainAnswer([await leafFor(csr, { issuer: inter }), inter.cert], [other.cert])),
    );
    const { holder, metrics, logs } = startAgent(
      { url: scripted.url, bundleFile: '' },
      'join-token',
      scripted.cleanups,
      {
        bundlePem: ca.bundlePem,
        bundleRefreshMs: 3_600_000,
      },
    );
    await waitFor('a refused bootstrap', async () => (await rotations(metrics, 'failure')) >= 1, 10_000);
    expect(holder.current).toBeUndefined();
    const line = logs.find((l) => l.code === 'MESHAUTH_ERR_CA_RESPONSE_INVALID');
    expect(line?.reason).toBe('bundle_without_ca_root');
  });
});

/** `meshauth_bundle_refreshes_total{result}` as a number. */
async function bundleRefreshes(metrics: Metrics, result: string): Promise<number> {
  const { values } = await metrics.bundleRefreshes.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

/** GET /v1/bundle answered once by `first`, honestly after that. */
function bundleOnce(first: Handler): Handler {
  let sent = false;
  return (request, body, response) => {
    if (request.method !== 'GET' || sent) return honest(request, body, response);
    sent = true;
    return first(request, body, response);
  };
}

/** A 200 answer with `text` as its body. */
function ok200(text: string): Handler {
  return (_request, _body, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(text);
  };
}

const BUNDLE_FAILURES = [
  'unreachable',
  'tls',
  'malformed',
  'no_certificate',
  'bundle_without_ca_root',
  'apply_failure',
  'error',
];

describe.concurrent('agent trust bundle refreshes are counted', () => {
  it('ok/every result is exposed at 0 from the agent start, and only where an agent runs', async ({
    expect,
    onTestFinished,
  }) => {
    const { metrics } = await bootstrapped(onTestFinished, honest);
    const text = await metrics.exposition();
    for (const result of ['ok', ...BUNDLE_FAILURES]) {
      expect(text).toMatch(new RegExp(`^meshauth_bundle_refreshes_total\\{result="${result}"\\} 0$`, 'm'));
    }
    expect(await new Metrics().exposition()).not.toContain('meshauth_bundle_refreshes_total');
  });

  // [what the CA answers, the result counted, the answer, the reason logged when it is not the result]
  it.for<[string, string, () => Handler, string?]>([
    [
      'a bundle swapping our root for another',
      'bundle_without_ca_root',
      () => ok200(JSON.stringify({ bundle: [otherRoot.toString('pem')] })),
    ],
    ['a body that is not JSON', 'malformed', () => ok200('{"bundle": [')],
    ['an empty bundle list', 'malformed', () => ok200(JSON.stringify({ bundle: [] }))],
    [
      // Found in review: hundreds of roots per refresh, each later dropped and remembered, froze the event loop.
      'a bundle of 33 certificates in one text (32 at most)',
      'malformed',
      () => ok200(JSON.stringify({ bundle: [`${ca.rootPem}\n${`${otherRoot.toString('pem')}\n`.repeat(32)}`] })),
    ],
    ['a bundle of text that holds no certificate', 'no_certificate', () => ok200('{"bundle": ["not a pem"]}')],
    [
      'a connection closed before an answer',
      'unreachable',
      () => (_q, _b, response) => {
        response.destroy();
      },
    ],
    [
      'a 503 (any other failure)',
      'error',
      () => (_q, _b, response) => {
        response.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"MESHAUTH_ERR_CA_UNAVAILABLE"}');
      },
      'http_503',
    ],
  ])(
    'fail/%s is counted once under %s; the next (honest) refresh counts ok',
    async ([_name, reason, first, logged = reason], { expect, onTestFinished }) => {
      const { holder, metrics, logs } = await bootstrapped(onTestFinished, bundleOnce(first()), {
        bundleRefreshMs: 500,
      });
      const refused = await waitFor('the refused bundle', () =>
        logs.find((l) => l.msg.startsWith('trust bundle refresh failed')),
      );
      expect(refused.reason).toBe(logged);
      await waitFor('an ok refresh', async () => (await bundleRefreshes(metrics, 'ok')) >= 1, 5_000);
      expect(await bundleRefreshes(metrics, reason)).toBe(1);
      for (const other of BUNDLE_FAILURES.filter((r) => r !== reason)) {
        expect(await bundleRefreshes(metrics, other)).toBe(0);
      }
      expect(holder.current?.bundle.hasRoot(ca.root)).toBe(true);
    },
  );

  it('ok/a bundle adding a root is installed and counted ok', async ({ expect, onTestFinished }) => {
    const { holder, metrics } = await bootstrapped(
      onTestFinished,
      bundleOnce(ok200(JSON.stringify({ bundle: [ca.rootPem, otherRoot.toString('pem')] }))),
      { bundleRefreshMs: 500 },
    );
    await waitFor('the new root', () => holder.current?.bundle.hasRoot(otherRoot) === true, 5_000);
    expect(await bundleRefreshes(metrics, 'ok')).toBeGreaterThanOrEqual(1);
    for (const failure of BUNDLE_FAILURES) expect(await bundleRefreshes(metrics, failure)).toBe(0);
  });
});

describe.concurrent('agent against a CA with a hostile Retry-After', () => {
  it.for([
    ['0', '0'],
    ['huge', '999999999'],
    ['a date far in the future', new Date(Date.now() + 365 * day).toUTCString()],
    ['garbage', 'soon, maybe'],
  ])(
    'ok/Retry-After %s: retried before the SVID expires, without spinning',
    async ([_name, value], { expect, onTestFinished }) => {
      const { holder, metrics } = await bootstrapped(
        onTestFinished,
        (request, body, response) => {
          if (request.method !== 'POST') return honest(request, body, response);
          response.writeHead(503, { 'content-type': 'application/json', 'retry-after': value });
          response.end(JSON.stringify({ code: 'MESHAUTH_ERR_CA_UNAVAILABLE', message: 'busy' }));
        },
        { maxBackoffMs: 60_000 },
      );
      const notAfter = holder.current?.svid.notAfter.getTime() ?? 0;
      await waitFor('two refused renewals', async () => (await rotations(metrics, 'failure')) >= 2, SVID_TTL_MS);
      expect(Date.now()).toBeLessThan(notAfter);
      await waitFor('the SVID to expire', () => Date.now() > notAfter, SVID_TTL_MS);
      // The floor between attempts is 250 ms: from the first renewal (at 45 % of the SVID's life at the earliest) to
      // expiry, and one more as the expiry is seen, at most MAX_REFUSED_RETRIES fit. A spinning agent is far past it,
      // and one without the floor, its backoff capped by a life running out, makes 12 or more.
      expect(await rotations(metrics, 'failure')).toBeLessThanOrEqual(MAX_REFUSED_RETRIES);
    },
  );
});
