// The gateway's relying party reads at most 1 MiB of any answer of the OpenID provider (discovery, token, refresh),
// announced by Content-Length or counted as it streams; past that the provider counts as unavailable
// (MESHAUTH_ERR_IDP_UNAVAILABLE, reason idp_unavailable), as for a provider that does not answer.
// Found in review: answers were read whole and parsed, so whatever answered at the issuer's address could make the
// gateway buffer hundreds of MB per discovery, sign-in callback and session refresh; a large token answer was even
// reported as a bad ID token.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcRelyingParty } from '../../src/gateway/oidc-relying-party.js';
import { MAX_PROVIDER_BODY_BYTES } from '../../src/gateway/provider-fetch.js';
import { discoveryDocument } from '../helpers/fake-op.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { oidcSettings } from '../helpers/oidc-settings.js';
import { refusal } from '../helpers/refusal.js';

type Size = 'small' | 'just_under' | 'declared_over' | 'streamed_over';

/** A JSON object padded to about `bytes` (still valid JSON: without the cap it parses). */
function padded(fields: Record<string, unknown>, bytes: number): string {
  const text = JSON.stringify({ ...fields, pad: '' });
  return text.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, bytes - text.length))}"`);
}

/** Writes `text` as the answer: with its Content-Length, or chunked in 64 KiB writes. */
function answer(res: ServerResponse, text: string, streamed: boolean): void {
  res.on('error', () => undefined); // the gateway hangs up past the cap
  if (!streamed) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  let at = 0;
  const next = (): void => {
    while (at < text.length && !res.destroyed) {
      const chunk = text.slice(at, at + 65_536);
      at += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', next);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  next();
}

function bytesFor(size: Size): number {
  if (size === 'small') return 0;
  if (size === 'just_under') return MAX_PROVIDER_BODY_BYTES - 4096;
  return 2 * MAX_PROVIDER_BODY_BYTES;
}

describe('gateway relying party: the size of the provider’s answers', () => {
  let server: Server;
  let issuer: string;
  let discovery: Size = 'small';
  let token: Size = 'small';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', issuer).pathname;
      req.resume();
      if (path === '/.well-known/openid-configuration') {
        answer(res, padded(discoveryDocument(issuer), bytesFor(discovery)), discovery === 'streamed_over');
        return;
      }
      if (path === '/token') {
        const tokens = { access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: 'not.a.token' };
        answer(res, padded(tokens, bytesFor(token)), token === 'streamed_over');
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function relyingParty(): { readonly rp: OidcRelyingParty; readonly log: LogLines } {
    const log = logLines('gateway', 'info');
    return { rp: new OidcRelyingParty(oidcSettings({ issuer }), log.logger), log };
  }

  it('ok/a discovery document just under 1 MiB is read', async () => {
    discovery = 'just_under';
    const { rp } = relyingParty();
    try {
      const config = await rp.configuration();
      expect(config.serverMetadata().issuer).toBe(issuer);
    } finally {
      discovery = 'small';
      await rp.close();
    }
  });

  it.each([
    ['declared_over', 'its Content-Length says more than 1 MiB'],
    ['streamed_over', 'more than 1 MiB arrives chunked'],
  ] as const)('fail/discovery: %s (%s) → the provider is unavailable, one warning', async (size, _what) => {
    discovery = size;
    const { rp, log } = relyingParty();
    try {
      const error = await refusal(() => rp.configuration());
      expect(error.code).toBe('MESHAUTH_ERR_IDP_UNAVAILABLE');
      expect(error.reason).toBe('idp_unavailable');
      const warned = log.lines.filter((line) => line.msg === 'OpenID discovery failed');
      expect(warned).toHaveLength(1);
      expect(warned[0]?.err).toBe(`provider answer larger than ${MAX_PROVIDER_BODY_BYTES} bytes`);
    } finally {
      discovery = 'small';
      await rp.close();
    }
  });

  it.each(['declared_over', 'streamed_over'] as const)(
    'fail/token endpoint: %s → sign-in and refresh refused as the provider unavailable, not as a bad ID token',
    async (size) => {
      const { rp } = relyingParty();
      try {
        const start = await rp.startLogin();
        token = size;
        const signIn = await refusal(() => rp.finishLogin(`?code=c1&state=${start.state}`, start));
        expect(signIn).toMatchObject({ code: 'MESHAUTH_ERR_IDP_UNAVAILABLE', reason: 'idp_unavailable' });
        const refresh = await refusal(() => rp.refresh('rt'));
        expect(refresh).toMatchObject({ code: 'MESHAUTH_ERR_IDP_UNAVAILABLE', reason: 'idp_unavailable' });
      } finally {
        token = 'small';
        await rp.close();
      }
    },
  );

  it('ok/a small token answer is read (and its made-up ID token refused as such)', async () => {
    const { rp } = relyingParty();
    try {
      const start = await rp.startLogin();
      const signIn = await refusal(() => rp.finishLogin(`?code=c1&state=${start.state}`, start));
      expect(signIn.code).toBe('MESHAUTH_ERR_LOGIN_FAILED');
    } finally {
      await rp.close();
    }
  });
});
