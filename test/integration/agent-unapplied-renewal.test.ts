// An agent whose first SVID could not be applied keeps it ("unapplied") and renews with it: the join token that
// brought it is spent, so bootstrapping again could never succeed. After a failed renewal it keeps that SVID only
// while the CA is out of reach or busy (429, 503, unreachable), answers that say nothing about the SVID. Any other
// refusal may be the SVID itself (the reason it did not apply), so it is dropped: the next attempt bootstraps
// instead of presenting it again, and an agent never loops on a broken SVID.
// The CA is a scripted HTTPS server under a TestCa, as in agent-hostile-ca: `ca serve` answers 503 only when its
// cluster fails and refuses a valid SVID only after a forced root retirement, and it cannot tell the test which
// credential each attempt presented. This one asks for a client certificate and records every POST /v1/svid as a
// bootstrap (a token in the body) or a renewal (with the leaf it presented).
// Every test has its own scripted CA, agent, logs, metrics and cleanup list, and mostly waits out the agent's
// backoff: the tests run side by side, taking `expect` from their context.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { beforeAll, describe, it, type TestContext } from 'vitest';
import { SpiffeId } from '../../src/identity/index.js';
import { createLeafCertificate, type Issuer, importPrivateKeyPem, verifyCsrPem } from '../../src/pki/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { type AgentHarness, type Cleanup, runCleanups, startAgent, WORKLOAD_ID } from './agent-harness.js';

/** Long enough that the unapplied SVID stays valid, and no scheduled renewal comes, for the whole test. */
const SVID_TTL_MS = 10 * 60_000;

/** What the scripted CA answers a POST /v1/svid with. */
type Answer =
  | { readonly kind: 'issue' }
  /** Not listening: every connection is refused. */
  | { readonly kind: 'unreachable' }
  | { readonly kind: 'refuse'; readonly status: number; readonly code: string; readonly retryAfter?: string };

const ISSUE: Answer = { kind: 'issue' };
/** What `ca serve` answers a join token it already took. */
const SPENT_TOKEN: Answer = { kind: 'refuse', status: 401, code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED' };

interface Attempt {
  readonly mode: 'bootstrap' | 'renewal';
  /** The leaf a renewal presented, DER in base64. */
  readonly presented: string | undefined;
  readonly answer: Answer['kind'];
}

interface ScriptedCa {
  readonly url: string;
  /** Every POST /v1/svid that reached the CA, in order. */
  readonly attempts: Attempt[];
  /** Every leaf issued, DER in base64, in order. */
  readonly issued: string[];
  /** The answer to every renewal. Set to `unreachable` before the agent starts, the CA stops at the first issue. */
  renewal: Answer;
  /** The answer to every bootstrap after the first (which is issued). */
  readonly laterBootstraps: Answer;
  /** Listens again on its port if it stopped, and answers renewals with `answer` from then on. */
  answerRenewals(answer: Answer): Promise<void>;
}

let ca: TestCa;
let issuer: Issuer;
let serving: { readonly chainPem: string; readonly keyPem: string };

beforeAll(async () => {
  ca = await TestCa.create();
  issuer = {
    certificate: ca.intermediate,
    privateKey: (await importPrivateKeyPem(ca.intermediateKeyPem)).privateKey,
    keyType: 'p256',
  };
  serving = await ca.issue({ id: ca.idFor('/meshauth/ca'), ipAddresses: ['127.0.0.1'], ttlMs: 3600_000 });
});

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A test's own cleanup list, run when that test finishes (agent, directories, then the CA). */
function cleanupsOf(onTestFinished: TestContext['onTestFinished']): Cleanup[] {
  const cleanups: Cleanup[] = [];
  onTestFinished(() => runCleanups(cleanups));
  return cleanups;
}

async function startScriptedCa(renewal: Answer, laterBootstraps: Answer, cleanups: Cleanup[]): Promise<ScriptedCa> {
  const attempts: Attempt[] = [];
  const issued: string[] = [];
  let port = 0;
  let listening = false;
  // requestCert without rejectUnauthorized: a bootstrap comes without a certificate, and the test only records
  // which leaf a renewal presented.
  const server = createServer(
    { cert: serving.chainPem, key: serving.keyPem, ca: ca.bundlePem, requestCert: true, rejectUnauthorized: false },
    (request, response) => void answer(request, response).catch(() => response.destroy()),
  );
  const stopListening = (): void => {
    listening = false;
    // Only the listening socket closes: the answer in progress still reaches the agent.
    server.close();
  };
  const listen = async (): Promise<void> => {
    // While stopped, another socket of the machine may have taken the port for a moment: retried, bounded.
    for (let attempt = 1; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt === 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    listening = true;
    port = (server.address() as AddressInfo).port;
  };

  const script: ScriptedCa = {
    // The port it first listened on, which a restart keeps.
    get url() {
      return `https://127.0.0.1:${port}`;
    },
    attempts,
    issued,
    renewal,
    laterBootstraps,
    async answerRenewals(next: Answer) {
      script.renewal = next;
      if (!listening) await listen();
    },
  };

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    if (request.method === 'GET' && request.url === '/v1/bundle') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bundle: [ca.rootPem] }));
      return;
    }
    const { csr, token } = JSON.parse(body) as { csr: string; token?: string };
    const peer = (request.socket as TLSSocket).getPeerCertificate();
    const mode = token === undefined ? 'renewal' : 'bootstrap';
    const first = attempts.length === 0;
    const chosen = mode === 'renewal' ? script.renewal : first ? ISSUE : script.laterBootstraps;
    const presented = Object.keys(peer).length === 0 ? undefined : peer.raw.toString('base64');
    attempts.push({ mode, presented, answer: chosen.kind });
    if (chosen.kind === 'refuse') {
      const headers = {
        'content-type': 'application/json',
        ...(chosen.retryAfter === undefined ? {} : { 'retry-after': chosen.retryAfter }),
      };
      response.writeHead(chosen.status, headers).end(JSON.stringify({ code: chosen.code, message: 'scripted' }));
      return;
    }
    // An unreachable CA stops listening before the first SVID reaches the agent, so no renewal can slip in first.
    if (first && script.renewal.kind === 'unreachable') stopListening();
    const leaf = await createLeafCertificate({
      id: SpiffeId.parse(WORKLOAD_ID),
      publicKey: (await verifyCsrPem(csr)).publicKey,
      issuer,
      now: new Date(),
      ttlMs: SVID_TTL_MS,
    });
    issued.push(Buffer.from(leaf.rawData).toString('base64'));
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        certChain: [leaf.toString('pem'), ca.intermediatePem],
        bundle: [ca.rootPem],
        expiresAt: leaf.notAfter.toISOString(),
      }),
    );
  }

  await listen();
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        // Already stopped: close() calls back at once with ERR_SERVER_NOT_RUNNING, nothing left to wait for.
        server.close(() => resolve());
      }),
  );
  return script;
}

/**
 * An agent against `scripted` whose first SVID fails to apply (a preparer throws once, as a listener refusing it
 * would), so it holds nothing and keeps that SVID as unapplied.
 */
function agentWithUnappliedSvid(scripted: ScriptedCa, cleanups: Cleanup[]): AgentHarness {
  const harness = startAgent({ url: scripted.url, bundleFile: '' }, 'join-token', cleanups, {
    bundlePem: ca.bundlePem,
    // No bundle fetch in the way: the attempts counted are the SVID requests.
    bundleRefreshMs: 3_600_000,
  });
  let calls = 0;
  cleanups.push(
    harness.holder.prepare(() => {
      calls += 1;
      if (calls === 1) throw new Error('secure context cannot be built');
      return () => undefined;
    }),
  );
  return harness;
}

/** The agent's own account of its failed attempts (one error line each, as it holds no valid SVID). */
function failedModes(harness: AgentHarness): string[] {
  return harness.logs.filter((l) => /^SVID (bootstrap|renewal) failed/.test(l.msg)).map((l) => String(l.mode));
}

describe.concurrent('agent: a first SVID that was not applied, while the CA is out of reach or busy', () => {
  it.for<[string, Answer, string]>([
    ['503', { kind: 'refuse', status: 503, code: 'MESHAUTH_ERR_CA_UNAVAILABLE', retryAfter: '1' }, 'http_503'],
    ['429', { kind: 'refuse', status: 429, code: 'MESHAUTH_ERR_CA_OVERLOADED', retryAfter: '1' }, 'http_429'],
    ['unreachable', { kind: 'unreachable' }, 'unreachable'],
  ])(
    'ok/%s: it keeps renewing with that SVID, then renews (not bootstraps) once the CA is back',
    { timeout: 60_000 },
    async ([_name, busy, reason], { expect, onTestFinished }) => {
      const cleanups = cleanupsOf(onTestFinished);
      const scripted = await startScriptedCa(busy, SPENT_TOKEN, cleanups);
      const harness = agentWithUnappliedSvid(scripted, cleanups);
      const { agent, holder, logs } = harness;

      await waitFor('three failed attempts', () => failedModes(harness).length >= 3, 30_000);
      expect(holder.current).toBeUndefined();
      // Every attempt was a renewal: none fell back to the spent join token.
      expect(failedModes(harness).slice(0, 3)).toEqual(['renewal', 'renewal', 'renewal']);
      const failures = logs.filter((l) => /^SVID (bootstrap|renewal) failed/.test(l.msg));
      expect(failures.slice(0, 3).map((l) => l.reason)).toEqual([reason, reason, reason]);

      await scripted.answerRenewals(ISSUE);
      await waitFor('an SVID in the holder', () => holder.current, 20_000);
      await agent.whenReady();
      const [unapplied, renewed] = scripted.issued;
      expect(scripted.issued).toHaveLength(2);
      expect(holder.current?.svid.id.toString()).toBe(WORKLOAD_ID);
      expect(Buffer.from(holder.current?.svid.leafDer ?? []).toString('base64')).toBe(renewed);
      // The CA saw one bootstrap (the first SVID), then only renewals presenting the SVID that was never applied.
      const [bootstrap, ...renewals] = scripted.attempts;
      expect(bootstrap?.mode).toBe('bootstrap');
      expect(renewals.length).toBeGreaterThanOrEqual(1);
      expect(renewals.every((a) => a.mode === 'renewal' && a.presented === unapplied)).toBe(true);
      expect(renewals.at(-1)?.answer).toBe('issue');
      expect(logs.filter((l) => l.msg === 'SVID renewed')).toHaveLength(1);
      expect(logs.some((l) => l.msg === 'SVID obtained')).toBe(false);
    },
  );
});

describe.concurrent('agent: a first SVID that was not applied, refused by the CA', () => {
  it.for<[string, Answer]>([
    ['401', { kind: 'refuse', status: 401, code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED' }],
    ['403', { kind: 'refuse', status: 403, code: 'MESHAUTH_ERR_CA_IDENTITY_MISMATCH' }],
    ['400', { kind: 'refuse', status: 400, code: 'MESHAUTH_ERR_CA_BAD_REQUEST' }],
  ])(
    'fail/%s: that SVID is dropped, never presented again; the next attempts bootstrap',
    { timeout: 60_000 },
    async ([_name, refusal], { expect, onTestFinished }) => {
      const cleanups = cleanupsOf(onTestFinished);
      const scripted = await startScriptedCa(refusal, SPENT_TOKEN, cleanups);
      const harness = agentWithUnappliedSvid(scripted, cleanups);

      // The refused renewal, then three more attempts: enough to see a loop back to the dropped SVID.
      await waitFor('four attempts after the first SVID', () => scripted.attempts.length >= 5, 30_000);
      expect(harness.holder.current).toBeUndefined();
      const [unapplied] = scripted.issued;
      expect(scripted.attempts.slice(0, 5).map((a) => a.mode)).toEqual([
        'bootstrap',
        'renewal',
        'bootstrap',
        'bootstrap',
        'bootstrap',
      ]);
      expect(scripted.attempts[1]?.presented).toBe(unapplied);
      expect(scripted.attempts.filter((a) => a.presented === unapplied)).toHaveLength(1);
    },
  );

  it('ok/400: a bootstrap credential that still works (a service-account token) brings the agent ready', async ({
    expect,
    onTestFinished,
  }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const scripted = await startScriptedCa(
      { kind: 'refuse', status: 400, code: 'MESHAUTH_ERR_CA_BAD_REQUEST' },
      ISSUE,
      cleanups,
    );
    const { agent, holder, logs } = agentWithUnappliedSvid(scripted, cleanups);

    await waitFor('an SVID in the holder', () => holder.current, 20_000);
    await agent.whenReady();
    const [unapplied, bootstrapped] = scripted.issued;
    expect(Buffer.from(holder.current?.svid.leafDer ?? []).toString('base64')).toBe(bootstrapped);
    expect(scripted.attempts.map((a) => a.mode)).toEqual(['bootstrap', 'renewal', 'bootstrap']);
    expect(scripted.attempts[1]?.presented).toBe(unapplied);
    expect(logs.filter((l) => l.msg === 'SVID obtained')).toHaveLength(1);
  }, 60_000);
});
