// Every caller that waits on one OpenID discovery gets the same answer when it fails (found in review): only the
// first caller got MESHAUTH_ERR_IDP_UNAVAILABLE; sign-ins, callbacks and refreshes that arrived while it was in
// flight got openid-client's own error, which the edge answered 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE with an
// error-level "gateway request failed" line, uncounted as idp_unavailable: exactly during a provider incident.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../src/errors/index.js';
import { OidcRelyingParty } from '../../src/gateway/oidc-relying-party.js';
import { logLines } from '../helpers/log-lines.js';
import { oidcSettings } from '../helpers/oidc-settings.js';
import { until } from '../helpers/wait.js';

/** A provider whose discovery answers are held until the test ends them (their head sent, the body not yet). */
async function heldProvider() {
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    res.on('error', () => undefined);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"issuer":');
    held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    held,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How `promise` settles: the rejection, or a marker that it resolved. */
function settled(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );
}

describe('gateway relying party: a failed discovery shared by its waiting callers', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('fail/sign-in starts, callbacks and refreshes waiting on one discovery all get 502 MESHAUTH_ERR_IDP_UNAVAILABLE', async () => {
    const provider = await heldProvider();
    cleanups.push(provider.close);
    const log = logLines('gateway', 'info');
    const rp = new OidcRelyingParty(oidcSettings({ issuer: provider.issuer }), log.logger);
    cleanups.push(() => rp.close());
    const expected = { state: 's', nonce: 'n', verifier: 'v'.repeat(43) };
    const waiting = [
      settled(rp.startLogin()),
      settled(rp.startLogin()),
      settled(rp.finishLogin('?code=c&state=s', expected)),
      settled(rp.refresh('rt')),
      settled(rp.configuration()),
    ];
    await until('the discovery request', () => provider.held.length === 1);
    // The provider goes away in the middle of its answer.
    for (const res of provider.held) res.destroy();
    const outcomes = await Promise.all(waiting);
    expect(provider.held).toHaveLength(1); // one discovery for all of them
    for (const outcome of outcomes) {
      expect(outcome).toBeInstanceOf(MeshauthError);
      expect(outcome).toMatchObject({ code: 'MESHAUTH_ERR_IDP_UNAVAILABLE', reason: 'idp_unavailable', status: 502 });
    }
    expect(log.lines.filter((line) => line.msg === 'OpenID discovery failed')).toHaveLength(1);
  });
});
