// A refused bearer token writes one log line at the listener that refuses the request (the verifier writes none).
// A caller that sends a forged token and leaves while the token is checked (here: while the JWKS is fetched) gets
// no answer, so the listener's rejection line was never written: the refusal was counted but logged zero times.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken, jwksText, signingKey } from '../helpers/end-user-keys.js';
import { EXTERNAL_ISSUER, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { eventually } from '../helpers/raw-app.js';
import type { TestSidecar } from '../helpers/sidecar-harness.js';

describe('external listener: a refused token whose caller left', () => {
  let external: ExternalSidecar;
  let sc: TestSidecar;
  let log: LogLines;
  let jwks: Server;
  let jwksBody: string;
  /** Answers the held JWKS requests; until called, every JWKS request waits. */
  let release: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    jwksBody = jwksText(await signingKey('k1'));
    jwks = createServer((_req, res) => {
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(jwksBody));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    log = logLines('sidecar', 'info');
    external = await startExternalSidecar({
      logger: log.logger,
      jwksUri: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
    });
    sc = external.sc;
  });

  afterAll(async () => {
    release();
    await external?.close();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  it('fail/is logged once, as the rejection of an answered request is', async () => {
    // Signed by another key under the issuer's kid: refused (signature) once the held JWKS arrives.
    const forged = await endUserToken(await signingKey('k1'), EXTERNAL_ISSUER, 'api', 'mallory');
    const open = async () =>
      (await sc.metrics.connectionsOpen.get()).values.find((v) => v.labels.direction === 'external')?.value ?? 0;
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: sc.sidecar.externalPort as number,
        ca: external.ca.rootPem,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
      });
      s.once('error', reject);
      s.once('secureConnect', () => {
        s.write(`GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${forged}\r\n\r\n`, () => {
          s.destroy();
          resolve();
        });
      });
    });
    // The sidecar has seen the caller leave while the token waits for the key set; now let the key set arrive.
    expect(await eventually(async () => (await open()) === 0)).toBe(true);
    release();
    const refused = async () =>
      (await sc.metrics.tokenVerifications.get()).values
        .filter((v) => v.labels.result !== 'success')
        .reduce((sum, v) => sum + v.value, 0);
    expect(await eventually(async () => (await refused()) === 1)).toBe(true);
    const lines = log.lines.filter((line) => line.code === 'MESHAUTH_ERR_TOKEN_INVALID');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ direction: 'external', issuer: EXTERNAL_ISSUER, kid: 'k1' });
  });
});
