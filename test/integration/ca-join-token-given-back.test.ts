// A join token is spent only for an SVID actually issued. A failure on the CA's side after the token was spent (the
// signer fails) gives it back, and a CA shutting down with a bootstrap in flight does not spend it: the agent
// retries with the only token it has and bootstraps, once. Each token still bootstraps only once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { caStatusOf, requestSvid } from '../../src/agent/ca-client.js';
import { type CaServer, createJoinToken, JwtKeyRing, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { SigningPool } from '../../src/ca/signing-pool.js';
import { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair, parseCertificatesPem, uriSans } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TD = TrustDomain.parse('example.org');
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface RunningCa {
  readonly server: CaServer;
  readonly metrics: Metrics;
  readonly logs: LogLines;
}

async function startCa(dir: string, workers: number): Promise<RunningCa> {
  const metrics = new Metrics();
  const logs = logLines('ca', 'info');
  const server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    workers,
    logger: logs.logger,
    metrics,
  });
  cleanups.push(() => server.close());
  return { server, metrics, logs };
}

/** POST /v1/svid as the agent sends it: the SPIFFE ID of the SVID, or the CA's refusal. */
async function bootstrap(server: CaServer, dir: string, token: string): Promise<string | MeshauthError> {
  const bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
  const csrPem = await createCsrPem(await generateKeyPair('p256'));
  try {
    const svid = await requestSvid({ caUrl: server.url, bundlePem, trustDomain: TD }, { csrPem, token });
    const leaf = parseCertificatesPem(svid.certChainPem[0] ?? '')[0];
    return leaf === undefined ? 'no leaf' : (uriSans(leaf)[0] ?? 'no URI SAN');
  } catch (error) {
    if (error instanceof MeshauthError) return error;
    throw error;
  }
}

async function issuedByJoinToken(metrics: Metrics): Promise<number> {
  const { values } = await metrics.caSvidsIssued.get();
  return values.find((v) => v.labels.method === 'join_token')?.value ?? 0;
}

describe('a join token and a failure on the CA side', () => {
  it('ok/the signer fails after the token was spent: 503, the token is given back, then it bootstraps once and only once', async () => {
    const ca = await makeCaDir();
    cleanups.push(ca.cleanup);
    const { server, metrics, logs } = await startCa(ca.dir, 1);
    const token = await createJoinToken({ dir: ca.dir, id: ID, ttlMs: 10 * 60_000 });
    // The pool's answer for a job it could not finish anywhere (its worker and the fallback both failed).
    vi.spyOn(SigningPool.prototype, 'issue').mockRejectedValueOnce(new Error('signing worker exited (1)'));

    const failed = await bootstrap(server, ca.dir, token);
    expect(failed).toBeInstanceOf(MeshauthError);
    expect(caStatusOf(failed), 'a CA-side failure is a 503 the agent retries').toBe(503);
    expect((failed as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(await bootstrap(server, ca.dir, token), 'the retry with the same token bootstraps').toBe(ID);
    // The same counter and the same line as before, which now says the token was given back.
    expect(await caRejections(metrics, 'internal')).toBe(1);
    const failures = logs.find({ event: 'ca_request_failed' });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.joinTokenRestored).toBe(true);
    expect(logs.find({ event: 'ca_request_rejected', reason: 'internal' })[0]?.joinTokenRestored).toBe(true);
    const replay = await bootstrap(server, ca.dir, token);
    expect(caStatusOf(replay), 'and only once').toBe(401);
    expect(await caRejections(metrics, 'token_used')).toBe(1);
    expect(await issuedByJoinToken(metrics)).toBe(1);
  });

  it('ok/a CA shutting down with a bootstrap in flight does not spend its token: a replica bootstraps it once', async () => {
    const ca = await makeCaDir();
    cleanups.push(ca.cleanup);
    const closing = await startCa(ca.dir, 1);
    const token = await createJoinToken({ dir: ca.dir, id: ID, ttlMs: 10 * 60_000 });
    // Holds the request inside the handler, before any credential check, until the CA has closed its connection.
    let reached = false;
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const refresh = JwtKeyRing.prototype.refresh;
    vi.spyOn(JwtKeyRing.prototype, 'refresh').mockImplementationOnce(async function (this: JwtKeyRing) {
      reached = true;
      await gate;
      return refresh.call(this);
    });
    cleanups.push(release);

    const inFlight = bootstrap(closing.server, ca.dir, token);
    await waitFor('the bootstrap to reach the handler', () => reached);
    const closed = closing.server.close();
    const answer = await inFlight;
    expect(answer, 'the CA closed the connection').toBeInstanceOf(MeshauthError);
    expect(caStatusOf(answer)).toBeUndefined();
    release();
    await closed;
    // The handler goes on after its connection closed: it either refuses or (the defect) spends and signs anyway.
    await waitFor(
      'the in-flight bootstrap to end',
      async () =>
        (await caRejections(closing.metrics, 'connection_closed')) + (await issuedByJoinToken(closing.metrics)) > 0,
    );
    expect(await issuedByJoinToken(closing.metrics), 'signed an SVID for a connection already closed').toBe(0);
    expect(await caRejections(closing.metrics, 'connection_closed')).toBe(1);

    const replica = await startCa(ca.dir, 0);
    expect(await bootstrap(replica.server, ca.dir, token)).toBe(ID);
    expect(caStatusOf(await bootstrap(replica.server, ca.dir, token))).toBe(401);
    expect(await caRejections(replica.metrics, 'token_used')).toBe(1);
  });
});
