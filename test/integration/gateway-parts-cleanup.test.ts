// The gateway's parts are one stack, unwound newest first by a failed start and by close(). A start that failed
// after its verifiers were up used to leave the API token verifier (its JWKS refresh timer), the JWT-SVID verifier
// and the OIDC relying party (their dispatchers) running in the process that called startGateway; a part that failed
// to close used to stop close() there and leave the policy watcher, the verifiers, the relying party and the admin
// listener open. close() runs the public listener (stop accepting, drain) first and the admin server (its /readyz
// says "draining") last; every part is closed and the first failure is reported after. A listen address refused at
// start fails it only once the other listener's bind has settled (that bind is then closed with the rest), and two
// refused addresses are named in one error, where the second used to surface only after the first was freed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { EndUserVerifier } from '../../src/authn/end-user-verifier.js';
import { PolicyWatcher } from '../../src/authz/index.js';
import { isMeshauthError, type MeshauthError } from '../../src/errors/index.js';
import { gatewayConfigFromObject, startGateway } from '../../src/gateway/index.js';
import { JwtSvidVerifier } from '../../src/gateway/jwt-svid-verifier.js';
import { MeshForwarder } from '../../src/gateway/mesh-forwarder.js';
import { OidcRelyingParty } from '../../src/gateway/oidc-relying-party.js';
import { PublicListener } from '../../src/gateway/public-listener.js';
import { AdminServer } from '../../src/telemetry/admin-server.js';
import { Metrics } from '../../src/telemetry/index.js';
import { writeGatewayFiles } from '../helpers/gateway-files.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const APP_ID = 'spiffe://example.org/ns/shop/sa/app';

/** Whether a TCP connection to 127.0.0.1:port is refused (the listener is closed). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** A server holding a port of 127.0.0.1: a gateway listener given that address is refused (EADDRINUSE). */
function takenPort(servers: Server[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    servers.push(server);
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server.address() as { port: number }).port));
  });
}

/** The TCP listeners this process holds (this file's gateways and blockers are its only ones). */
function listeningHandles(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length;
}

describe('gateway parts', () => {
  let dir: string;
  let document: Record<string, unknown>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-gateway-start-'));
    const { bundle, cert, key, write } = await writeGatewayFiles(dir);
    document = {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle, token: join(dir, 'no-token') },
      listen: '127.0.0.1:0',
      tls: { cert, key },
      session: { keys: [write('session.key', 'k'.repeat(64))] },
      oidc: {
        // Never reached: discovery happens at the first sign-in, and no request is made.
        issuer: 'http://127.0.0.2:1',
        clientId: 'meshauth-gateway',
        clientSecretFile: write('client.secret', 'gateway-secret-for-tests-only'),
        redirectUri: 'https://127.0.0.1/.meshauth/callback',
      },
      // A file key set: the verifier's start reads it and arms its check timer, with no socket.
      apiIssuers: [
        {
          issuer: 'https://idp.example.org',
          audiences: ['shop-api'],
          algorithms: ['ES256'],
          jwksUri: pathToFileURL(write('jwks.json', '{"keys":[]}')).href,
        },
      ],
      jwtSvids: { audiences: ['gateway'] },
      routes: [{ name: 'app', match: { host: '*', pathPrefix: '/' }, to: { address: '127.0.0.1:1', ids: [APP_ID] } }],
      policy: write('policy.yaml', 'apiVersion: meshauth.dev/v1\nkind: Policy\nrules: [{ name: r, action: allow }]\n'),
      admin: { listen: '127.0.0.1:0' },
    };
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const blockers: Server[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(blockers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('fail/an invalid policy closes the JWT-SVID verifier, the API verifier and the relying party, in that order', async () => {
    const closes = [
      vi.spyOn(JwtSvidVerifier.prototype, 'close'),
      vi.spyOn(EndUserVerifier.prototype, 'close'),
      vi.spyOn(OidcRelyingParty.prototype, 'close'),
    ];
    const policy = join(dir, 'invalid-policy.yaml');
    writeFileSync(policy, 'apiVersion: meshauth.dev/v1\nkind: Policy\nrules: [{ name: r, action: permit }]\n');
    const config = gatewayConfigFromObject({ ...document, policy }, 'gateway-test.yaml');
    const log = logLines('gateway', 'warn');
    const start = startGateway(config, { logger: log.logger, metrics: new Metrics() });
    const error = await start.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')).toBe(true);
    for (const close of closes) expect(close).toHaveBeenCalledTimes(1);
    const order = closes.map((close) => close.mock.invocationCallOrder[0] ?? 0);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('fail/an unreadable server certificate also closes the policy watcher, first', async () => {
    const closes = [
      vi.spyOn(PolicyWatcher.prototype, 'close'),
      vi.spyOn(JwtSvidVerifier.prototype, 'close'),
      vi.spyOn(EndUserVerifier.prototype, 'close'),
      vi.spyOn(OidcRelyingParty.prototype, 'close'),
    ];
    const tls = { ...(document.tls as Record<string, string>), cert: join(dir, 'no-such.crt') };
    const config = gatewayConfigFromObject({ ...document, tls }, 'gateway-test.yaml');
    const log = logLines('gateway', 'warn');
    const error = await startGateway(config, { logger: log.logger, metrics: new Metrics() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')).toBe(true);
    for (const close of closes) expect(close).toHaveBeenCalledTimes(1);
    const order = closes.map((close) => close.mock.invocationCallOrder[0] ?? 0);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  function start(overrides: Record<string, unknown> = {}) {
    const config = gatewayConfigFromObject({ ...document, ...overrides }, 'gateway-test.yaml');
    const log = logLines('gateway', 'warn');
    return startGateway(config, { logger: log.logger, metrics: new Metrics(), holder: new CredentialHolder() });
  }

  it('ok/close() closes every part once, newest first: the listener first, the admin server last', async () => {
    const closes = [
      vi.spyOn(PublicListener.prototype, 'close'),
      vi.spyOn(MeshForwarder.prototype, 'close'),
      vi.spyOn(PolicyWatcher.prototype, 'close'),
      vi.spyOn(JwtSvidVerifier.prototype, 'close'),
      vi.spyOn(EndUserVerifier.prototype, 'close'),
      vi.spyOn(OidcRelyingParty.prototype, 'close'),
      vi.spyOn(AdminServer.prototype, 'close'),
    ];
    const gateway = await start();
    await gateway.close(0);
    for (const close of closes) expect(close).toHaveBeenCalledTimes(1);
    const order = closes.map((close) => close.mock.invocationCallOrder[0] ?? 0);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(await refused(gateway.port)).toBe(true);
    expect(await refused(gateway.adminPort)).toBe(true);
  });

  it('fail/a part that fails to close leaves none of the others open; close() reports its error after', async () => {
    vi.spyOn(MeshForwarder.prototype, 'close').mockRejectedValueOnce(new Error('forwarder close failed'));
    const later = [
      vi.spyOn(PolicyWatcher.prototype, 'close'),
      vi.spyOn(JwtSvidVerifier.prototype, 'close'),
      vi.spyOn(EndUserVerifier.prototype, 'close'),
      vi.spyOn(OidcRelyingParty.prototype, 'close'),
      vi.spyOn(AdminServer.prototype, 'close'),
    ];
    const gateway = await start();
    const error = await gateway.close(0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error | undefined)?.message).toBe('forwarder close failed');
    for (const close of later) expect(close).toHaveBeenCalledTimes(1);
    expect(await refused(gateway.adminPort)).toBe(true);
  });

  it('fail/the public address taken → the admin listener is closed after its bind, and no listener is left', async () => {
    const taken = await takenPort(blockers);
    const adminListen = vi.spyOn(AdminServer.prototype, 'listen');
    const error = await start({ listen: `127.0.0.1:${taken}` }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshauthError(error, 'MESHAUTH_ERR_LISTEN')).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(`^listen: cannot listen on 127\\.0\\.0\\.1:${taken}: EADDRINUSE`),
    );
    // The admin bind had finished when the start failed: the port it got is closed again.
    let adminPort: number | Error | undefined;
    const bound: Promise<number> = adminListen.mock.results[0]?.value ?? Promise.reject(new Error('no admin listen'));
    bound.then(
      (port) => {
        adminPort = port;
      },
      (e: Error) => {
        adminPort = e;
      },
    );
    await waitFor('the admin bind to settle', () => adminPort !== undefined);
    expect(typeof adminPort).toBe('number');
    expect(await refused(adminPort as number)).toBe(true);
    await waitFor('no listener left but the blocker', () => listeningHandles() === blockers.length);
  });

  it('fail/both addresses taken → one MESHAUTH_ERR_LISTEN naming listen and admin.listen', async () => {
    const [publicTaken, adminTaken] = [await takenPort(blockers), await takenPort(blockers)];
    const error = await start({
      listen: `127.0.0.1:${publicTaken}`,
      admin: { listen: `127.0.0.1:${adminTaken}` },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshauthError(error, 'MESHAUTH_ERR_LISTEN')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(`listen: cannot listen on 127.0.0.1:${publicTaken}: EADDRINUSE`);
    expect(message).toContain(`admin.listen: cannot listen on 127.0.0.1:${adminTaken}: EADDRINUSE`);
    expect((error as MeshauthError).detail).toEqual({
      keys: ['listen', 'admin.listen'],
      errnos: ['EADDRINUSE', 'EADDRINUSE'],
    });
    await waitFor('no listener left but the blockers', () => listeningHandles() === blockers.length);
  });
});
