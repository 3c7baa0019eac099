// The agent against a real CA: bootstrap with a join token, repeated rotation with seconds-long SVIDs, and bootstrap
// failures that leave it not ready but retrying.
import { createServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import {
  CaHarness,
  type Cleanup,
  rotations,
  runCleanups,
  startAgent,
  TRUST_DOMAIN,
  WORKLOAD_ID,
} from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent bootstrap and rotation against the CA', () => {
  it('ok/bootstrap-with-join-token', async () => {
    const ca = await CaHarness.start(60_000, cleanups);
    const { agent, holder, metrics } = startAgent(ca, await ca.token(), cleanups);
    await waitFor('agent ready', () => agent.whenReady().then(() => true), 15_000);

    const current = holder.current as Credentials;
    expect(current.svid.id.toString()).toBe(WORKLOAD_ID);
    expect(holder.isValid(new Date())).toBe(true);
    expect(current.svid.certificates).toHaveLength(2);
    expect(current.bundle.trustDomain.equals(TRUST_DOMAIN)).toBe(true);
    expect(current.bundle.roots).toHaveLength(1);
    expect(current.svid.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    expect(await rotations(metrics, 'success')).toBe(1);
    const { values } = await metrics.svidExpiry.get();
    expect(values[0]?.value).toBe(current.svid.notAfter.getTime() / 1000);
  });

  it('ok/rotates-before-expiry-with-a-new-key-each-time', async () => {
    const ca = await CaHarness.start(4_000, cleanups);
    const { agent, holder, metrics } = startAgent(ca, await ca.token(), cleanups);
    const seen: { credentials: Credentials; previousValid: boolean }[] = [];
    cleanups.push(
      holder.subscribe((credentials) => {
        const previous = seen.at(-1)?.credentials;
        seen.push({ credentials, previousValid: previous === undefined || new Date() < previous.svid.notAfter });
      }),
    );
    await agent.whenReady();
    await waitFor('three rotations after bootstrap', () => seen.length >= 4, 20_000);

    const serials = new Set(seen.map((s) => s.credentials.svid.leaf.serialNumber));
    const keys = new Set(seen.map((s) => s.credentials.svid.privateKeyPem));
    expect(serials.size).toBe(seen.length);
    expect(keys.size).toBe(seen.length);
    for (const { credentials, previousValid } of seen) {
      expect(credentials.svid.id.toString()).toBe(WORKLOAD_ID);
      expect(previousValid).toBe(true);
    }
    expect(await rotations(metrics, 'success')).toBeGreaterThanOrEqual(4);
  });

  it('fail/unknown-token-not-ready-and-retrying', async () => {
    const ca = await CaHarness.start(60_000, cleanups);
    const { holder, metrics, logs } = startAgent(ca, 'not-a-token', cleanups);
    await waitFor('two failed attempts', async () => (await rotations(metrics, 'failure')) >= 2, 15_000);

    expect(holder.current).toBeUndefined();
    expect(await rotations(metrics, 'success')).toBe(0);
    expect(logs.some((l) => l.level === 'warn' && l.msg.includes('single-use'))).toBe(true);
    expect(logs.some((l) => l.code === 'MESHAUTH_ERR_CA_UNAUTHENTICATED')).toBe(true);
    expect(JSON.stringify(logs)).not.toContain('not-a-token');
  });

  it('fail/ca-not-anchored-in-configured-bundle', async () => {
    const ca = await CaHarness.start(60_000, cleanups);
    const stranger = await TestCa.create();
    const { holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups, { bundlePem: stranger.bundlePem });
    await waitFor('two failed attempts', async () => (await rotations(metrics, 'failure')) >= 2, 15_000);

    expect(holder.current).toBeUndefined();
    expect(await rotations(metrics, 'success')).toBe(0);
    expect(logs.some((l) => l.code === 'MESHAUTH_ERR_CA_UNAVAILABLE' && l.reason === 'tls')).toBe(true);
  });
});

describe('the agent authenticates the CA by its SPIFFE ID before sending the token', () => {
  it.each([
    ['ok/ca-id-is-contacted', 'spiffe://example.org/meshauth/ca', true],
    ['fail/workload-id-never-sees-the-token', 'spiffe://example.org/ns/shop/sa/evil', false],
    ['fail/ca-path-in-other-trust-domain', 'spiffe://other.org/meshauth/ca', false],
  ])('%s', async (_name, serverId, contacted) => {
    const pki = await TestCa.create();
    const serving = await pki.issue({ id: serverId, defects: { uris: [serverId] }, ipAddresses: ['127.0.0.1'] });
    const bodies: string[] = [];
    const server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"MESHAUTH_ERR_CA_UNAVAILABLE"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    server.closeAllConnections();
    const { port } = server.address() as AddressInfo;
    const ca = { url: `https://127.0.0.1:${port}`, bundleFile: '' };
    const { holder, metrics, logs } = startAgent(ca, 'secret-join-token', cleanups, { bundlePem: pki.bundlePem });
    await waitFor('two failed attempts', async () => (await rotations(metrics, 'failure')) >= 2, 15_000);

    expect(holder.current).toBeUndefined();
    if (contacted) {
      expect(bodies.length).toBeGreaterThanOrEqual(1);
      expect(bodies[0]).toContain('secret-join-token');
    } else {
      expect(bodies).toEqual([]);
      expect(logs.some((l) => l.code === 'MESHAUTH_ERR_CA_UNAVAILABLE' && l.reason === 'tls')).toBe(true);
    }
  });
});

describe('agent shutdown', () => {
  it('ok/close-aborts-an-in-flight-request-and-rejects-whenReady', async () => {
    // A "CA" that accepts TCP and never answers the TLS handshake: only the abort can end the request.
    const sockets = new Set<Socket>();
    const server = createTcpServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    );
    const { port } = server.address() as AddressInfo;
    const pki = await TestCa.create();
    const { agent, metrics } = startAgent({ url: `https://127.0.0.1:${port}`, bundleFile: '' }, 'token', cleanups, {
      bundlePem: pki.bundlePem,
      requestTimeoutMs: 120_000,
    });
    await waitFor('the agent to connect', () => sockets.size > 0, 15_000);
    const ready = agent.whenReady().then(
      () => 'ready',
      (error: unknown) => (isMeshauthError(error, 'MESHAUTH_ERR_NOT_READY') ? 'not_ready' : 'other'),
    );

    await agent.close(); // would hang for the 120 s request timeout (beyond the test timeout) without the abort
    expect(await ready).toBe('not_ready');
    expect(await rotations(metrics, 'failure')).toBe(0); // a cancelled attempt is not a CA failure
  });
});
