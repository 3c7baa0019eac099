// `inbound.endUser.maxClaimBytes` (256–8192, default 4096, as the gateway's `limits.maxClaimBytes`) bounds the claims
// of the users a sidecar vouches for, on the mTLS inbound and the external listener, from the file or from
// MESHAUTH_INBOUND_END_USER. Review follow-up: the sidecar refused every user whose claims passed 4096 bytes (a
// fixed MAX_CLAIM_BYTES), with no way to raise it for an identity provider that puts many groups in its tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSPORT_HEADER } from '../../../../src/authn/passport/index.js';
import { type EndUserSettings, loadSidecarConfig, sidecarConfigFromObject } from '../../../../src/config/index.js';
import { endUserAuthenticator } from '../../../../src/sidecar/inbound/end-user-authenticator.js';
import { externalAuthenticator } from '../../../../src/sidecar/inbound/external-authenticator.js';
import type { EndUserOutcome } from '../../../../src/sidecar/inbound/inbound-hooks.js';
import { configRefusalMessage } from '../../../helpers/config-refusal.js';
import { withEndUserHookOptions } from '../../../helpers/end-user-hook.js';
import {
  endUserTokenWith,
  type JwksFile,
  jwksFile,
  type SigningKey,
  signingKey,
} from '../../../helpers/end-user-keys.js';
import { TestCa, type TestSvid } from '../../../helpers/test-ca.js';

const ISS = 'https://idp.test';

let ca: TestCa;
let orders: TestSvid;
let key: SigningKey;
let jwks: JwksFile;
/** alice with 150 group IDs of 36 bytes (as Entra ID sends them): about 5,900 bytes of claims. */
let manyGroups: string;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  orders = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  key = await signingKey('k1');
  jwks = jwksFile('vouch-max-claim-bytes-', key);
  const groups = Array.from({ length: 150 }, (_, i) => `0b6c${String(i).padStart(4, '0')}-7d1e-4a2b-9c3d-1234567890ab`);
  manyGroups = await endUserTokenWith(key, ISS, 'api', { groups });
});

afterAll(() => jwks?.remove());

function endUserFile(extra: Record<string, unknown> = {}) {
  return {
    issuers: [{ issuer: ISS, audiences: ['api'], algorithms: ['ES256'], jwksUri: jwks.uri }],
    ...extra,
  };
}

function document(endUser: Record<string, unknown>) {
  return {
    trustDomain: 'example.org',
    ca: { url: 'https://ca.example.org:8443', bundle: '/etc/meshauth/bundle.pem', token: '/var/run/token' },
    inbound: { endUser, external: { listen: '127.0.0.1:8443', cert: '/tls/cert.pem', key: '/tls/key.pem' } },
  };
}

/** The sidecar's `inbound.endUser` settings from a config document, as the composition root gets them. */
function settingsOf(endUser: Record<string, unknown>): EndUserSettings {
  const settings = sidecarConfigFromObject(document(endUser), 'sidecar.yaml').inbound.endUser;
  if (settings === undefined) throw new Error('no endUser');
  return settings;
}

/** alice's many-groups token on `listener` of a sidecar with `settings`. */
function vouch(listener: 'inbound' | 'external', settings: EndUserSettings): Promise<EndUserOutcome> {
  return withEndUserHookOptions(ca, orders, settings, (options) => {
    const headers = { authorization: `Bearer ${manyGroups}` };
    const view = { headers, rawHeaders: Object.entries(headers).flat() };
    return listener === 'inbound'
      ? endUserAuthenticator(options)(view as never)
      : externalAuthenticator(options)(view as never);
  });
}

describe('inbound.endUser.maxClaimBytes', () => {
  for (const listener of ['inbound', 'external'] as const) {
    it(`fail/${listener}: by default a user with ~5,900 bytes of claims → 401 claims_too_large`, async () => {
      const outcome = await vouch(listener, settingsOf(endUserFile()));
      expect(outcome.reject).toMatchObject({ code: 'MESHAUTH_ERR_TOKEN_INVALID', reason: 'claims_too_large' });
      expect(outcome.reject?.message).toMatch(/; at most 4096 are vouched for$/);
    });

    it(`ok/${listener}: maxClaimBytes 8192 → the same user is vouched for`, async () => {
      const outcome = await vouch(listener, settingsOf(endUserFile({ maxClaimBytes: 8192 })));
      expect(outcome.reject).toBeUndefined();
      expect(outcome.user).toMatchObject({ sub: 'alice', iss: ISS });
      expect(outcome.headers?.[PASSPORT_HEADER]).toBeTypeOf('string');
    });
  }

  it('fail/a lower bound refuses the user at that bound', async () => {
    const outcome = await vouch('inbound', settingsOf(endUserFile({ maxClaimBytes: 1024 })));
    expect(outcome.reject?.message).toMatch(/; at most 1024 are vouched for$/);
  });

  it('ok/default 4096, from the file, and from MESHAUTH_INBOUND_END_USER', () => {
    expect(settingsOf(endUserFile()).maxClaimBytes).toBe(4096);
    expect(settingsOf(endUserFile({ maxClaimBytes: 256 })).maxClaimBytes).toBe(256);
    const config = loadSidecarConfig(undefined, {
      MESHAUTH_TRUST_DOMAIN: 'example.org',
      MESHAUTH_CA_URL: 'https://ca.example.org:8443',
      MESHAUTH_CA_BUNDLE: '/etc/meshauth/bundle.pem',
      MESHAUTH_CA_TOKEN: '/var/run/token',
      MESHAUTH_INBOUND_END_USER: JSON.stringify(endUserFile({ maxClaimBytes: 6000 })),
    });
    expect(config.inbound.endUser?.maxClaimBytes).toBe(6000);
  });

  for (const value of [255, 8193, 4096.5]) {
    it(`fail/${value} → the file, the key and the range`, () => {
      const message = configRefusalMessage(() =>
        sidecarConfigFromObject(document(endUserFile({ maxClaimBytes: value })), 'sidecar.yaml'),
      );
      expect(message).toBe(
        `sidecar.yaml: inbound.endUser.maxClaimBytes: expected a whole number from 256 to 8192, not ${value}`,
      );
    });
  }
});
