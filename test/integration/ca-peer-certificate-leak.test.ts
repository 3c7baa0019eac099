// The CA reads a renewing client's chain without getPeerX509Certificate(): on a server socket that call copies the
// first certificate the client sent after its leaf and drops the original from the TLS session without freeing it
// (Node 20 and 24 with OpenSSL 3), one native intermediate certificate per renewal that the V8 heap does not see
// (`ca serve` on Node 20: about 10 KB of RSS per renewal over 10,000 renewals). Node 24's own tls.Server makes that
// call on its handle for every client whose chain OpenSSL verified, so the CA starts its handshakes itself
// (acceptWithOptionalCertificate; 21 calls here through tls.Server on Node 24). Counted here on real sockets: the
// calls the CA makes on its server-side sockets while workloads renew (POST /v1/svid) and trade their SVID for a
// JWT-SVID (POST /v1/token), and that both are still authenticated by the chain the client sent.
import { TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { createJoinToken } from '../../src/ca/index.js';
import type { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import {
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  parseCertificatesPem,
  uriSans,
} from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { startCaInTempDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { TestCa } from '../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TD = TrustDomain.parse('example.org');
const RENEWALS = 20;

let dir: string;
let metrics: Metrics;
let connection: caClient.CaConnection;

beforeAll(async () => {
  metrics = new Metrics();
  const ca = await startCaInTempDir({ svidTtlMs: 15 * 60_000, workers: 0, logger: silentLogger(), metrics });
  dir = ca.dir;
  connection = { caUrl: ca.server.url, trustDomain: TD, bundlePem: ca.bundlePem };
  return ca.close;
});

afterEach(() => {
  vi.restoreAllMocks();
});

interface WrapInternals {
  _wrapHandle(...args: unknown[]): { getPeerX509Certificate?: (...args: unknown[]) => unknown } | null;
}

/**
 * Counts getPeerX509Certificate() calls on server-side sockets from here on (the CA client's own are not counted):
 * the socket's method, and its TLS handle's, which Node 24's own tls.Server calls for every verified client.
 */
function countServerSideCalls(): { readonly count: number } {
  const original = TLSSocket.prototype.getPeerX509Certificate;
  const calls = { count: 0 };
  const isServer = (socket: TLSSocket) =>
    (socket as TLSSocket & { _tlsOptions?: { isServer?: boolean } })._tlsOptions?.isServer === true;
  vi.spyOn(TLSSocket.prototype, 'getPeerX509Certificate').mockImplementation(function (this: TLSSocket) {
    if (isServer(this)) calls.count++;
    return original.call(this);
  });
  const prototype = TLSSocket.prototype as unknown as WrapInternals;
  const wrap = prototype._wrapHandle;
  vi.spyOn(prototype, '_wrapHandle').mockImplementation(function (this: TLSSocket, ...args: unknown[]) {
    const handle = wrap.apply(this, args);
    const read = handle?.getPeerX509Certificate;
    if (handle !== null && read !== undefined && isServer(this)) {
      handle.getPeerX509Certificate = function (this: unknown, ...readArgs: unknown[]) {
        calls.count++;
        return read.apply(this, readArgs);
      };
    }
    return handle;
  });
  return calls;
}

async function issue(client: { chainPem: string; keyPem: string } | { token: string }) {
  const keys = await generateKeyPair('p256');
  const csrPem = await createCsrPem(keys);
  const response =
    'token' in client
      ? await caClient.requestSvid(connection, { csrPem, token: client.token })
      : await caClient.requestSvid(
          { ...connection, clientCertPem: client.chainPem, clientKeyPem: client.keyPem },
          { csrPem },
        );
  return { chainPem: response.certChainPem.join(''), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

describe('CA client certificate: no getPeerX509Certificate() per renewal (native leak)', () => {
  it(`ok/${RENEWALS} renewals and a JWT-SVID, each authenticated by the client chain, read without it`, async () => {
    let svid = await issue({ token: await createJoinToken({ dir, id: ID, ttlMs: 60_000 }) });
    const calls = countServerSideCalls();
    for (let i = 0; i < RENEWALS; i++) {
      svid = await issue(svid);
      const leaf = parseCertificatesPem(svid.chainPem)[0];
      expect(leaf === undefined ? [] : uriSans(leaf)).toEqual([ID]);
    }
    const jwt = await caClient.requestJwtSvid(
      { ...connection, clientCertPem: svid.chainPem, clientKeyPem: svid.keyPem },
      { audience: 'https://api.example.com' },
    );
    expect(jwt.accessToken.split('.')).toHaveLength(3);
    expect(calls.count).toBe(0);
  });

  it('fail/a chain of another CA (same trust domain) is still refused, read without it', async () => {
    const foreign = await (await TestCa.create('example.org')).issue({ id: ID });
    const before = await caRejections(metrics, 'client_cert_unknown_ca');
    const calls = countServerSideCalls();
    const error = await issue({ chainPem: foreign.chainPem, keyPem: foreign.keyPem }).catch((e: unknown) => e);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(caClient.caStatusOf(error)).toBe(401);
    expect(await caRejections(metrics, 'client_cert_unknown_ca')).toBe(before + 1);
    expect(calls.count).toBe(0);
  });
});
