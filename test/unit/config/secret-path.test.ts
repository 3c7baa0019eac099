// A path setting of a secret whose value is the secret itself (a join token or a JWT in `ca.token` /
// MESHAUTH_CA_TOKEN, a PEM key in `inbound.external.key`) is refused by the config with a message naming the key,
// never the value; readSettingFile never shows such a value as a path. Review finding: `MESHAUTH_CA_TOKEN=<join
// token>` passed validation, and the agent logged `ca.token: token file <the token>: cannot be read (ENOENT)` at
// every bootstrap attempt, so whoever could read the pod's logs could redeem the unspent token for its identity.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, sidecarConfigFromObject } from '../../../src/config/index.js';
import { readSettingFile } from '../../../src/config/read-setting-file.js';
import { looksLikeSecret, WITHHELD_PATH } from '../../../src/config/secret-path.js';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const JOIN_TOKEN = 'DZWxRRCSCems4XARTR6AiHSnSCOmFqPh3vADbEuinec';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl';
const PEM = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKd7\n-----END PRIVATE KEY-----\n';

const ENV = {
  MESHAUTH_TRUST_DOMAIN: 'example.org',
  MESHAUTH_CA_URL: 'https://ca.example.org:8443',
  MESHAUTH_CA_BUNDLE: '/etc/meshauth/bundle.pem',
};

const TOKEN_EXPECTED =
  'expected the path of a file holding the token, not the token itself (a file in the working directory: ./name)';

describe('looksLikeSecret', () => {
  for (const value of [
    JOIN_TOKEN,
    ` ${JOIN_TOKEN}\n`,
    JWT,
    `${JWT}.aGVhZGVy.dGFn`, // a JWE has five parts
    'a'.repeat(20) + 'B'.repeat(12), // 32 base64url characters
    'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==',
    PEM,
  ]) {
    it(`fail/${JSON.stringify(value.slice(0, 24))}… is a credential`, () => {
      expect(looksLikeSecret(value)).toBe(true);
    });
  }

  for (const value of [
    '/var/run/secrets/meshauth/token',
    '/var/run/secrets/kubernetes.io/serviceaccount/token',
    'web.token',
    'token',
    `./${JOIN_TOKEN}`, // a long file name in the working directory, written as a path
    'orders-join-token-2026.txt',
    'a'.repeat(31),
    'eyJhbGciOiJSUzI1NiJ9.json',
  ]) {
    it(`ok/${JSON.stringify(value)} is a path`, () => {
      expect(looksLikeSecret(value)).toBe(false);
    });
  }
});

describe('the sidecar config refuses a credential where its file belongs', () => {
  for (const [name, token] of [
    ['a join token', JOIN_TOKEN],
    ['a service-account JWT', JWT],
  ] as const) {
    it(`fail/MESHAUTH_CA_TOKEN=<${name}> → the key and the variable, never the value`, () => {
      const message = configRefusalMessage(() => loadSidecarConfig(undefined, { ...ENV, MESHAUTH_CA_TOKEN: token }));
      expect(message).toBe(`environment: ca.token (from MESHAUTH_CA_TOKEN): ${TOKEN_EXPECTED}`);
    });
  }

  it('fail/ca.token in the file → the file and the key, never the value', () => {
    const document = { trustDomain: 'example.org', ca: { url: ENV.MESHAUTH_CA_URL, bundle: '/b.pem', token: JWT } };
    const message = configRefusalMessage(() => sidecarConfigFromObject(document, 'sidecar.yaml'));
    expect(message).toBe(`sidecar.yaml: ca.token: ${TOKEN_EXPECTED}`);
  });

  it('fail/a PEM key in inbound.external.key → "the private key", never the key', () => {
    const document = {
      trustDomain: 'example.org',
      ca: { url: ENV.MESHAUTH_CA_URL, bundle: '/b.pem', token: '/t' },
      inbound: {
        endUser: { issuers: [{ issuer: 'https://idp.example', audiences: ['api'], algorithms: ['ES256'] }] },
        external: { listen: '127.0.0.1:8443', cert: '/tls/cert.pem', key: PEM },
      },
    };
    const message = configRefusalMessage(() => sidecarConfigFromObject(document, 'sidecar.yaml'));
    expect(message).toBe(
      'sidecar.yaml: inbound.external.key: expected the path of a file holding the private key, not the private key itself (a file in the working directory: ./name)',
    );
  });

  it('ok/the paths a deployment uses', () => {
    const config = loadSidecarConfig(undefined, { ...ENV, MESHAUTH_CA_TOKEN: '/var/run/secrets/meshauth/token' });
    expect(config.ca.token).toBe('/var/run/secrets/meshauth/token');
  });
});

describe('readSettingFile never shows a credential as the path', () => {
  function refusal(path: string): MeshauthError {
    try {
      readSettingFile(path, { setting: 'oidc.clientSecretFile', what: 'client secret file', reason: 'oidc' });
    } catch (error) {
      if (isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  }

  for (const [name, value] of [
    ['a join token', JOIN_TOKEN],
    ['a JWT', JWT],
    ['a PEM key', PEM],
  ] as const) {
    it(`fail/${name} → "${WITHHELD_PATH}", in the message and in its cause`, () => {
      const error = refusal(value);
      expect(error.message).toBe(`oidc.clientSecretFile: client secret file ${WITHHELD_PATH}: cannot be read (ENOENT)`);
      // Node's own error says `open '<path>'`: only its code is kept.
      expect(String((error.cause as Error).message)).toBe('ENOENT');
      expect((error.cause as { code?: string }).code).toBe('ENOENT');
      expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toContain(
        value.slice(5, 25),
      );
    });
  }

  it("ok/a path is shown, with Node's error kept as the cause", () => {
    const error = refusal('/nonexistent/secret');
    expect(error.message).toBe(
      'oidc.clientSecretFile: client secret file /nonexistent/secret: cannot be read (ENOENT)',
    );
    expect((error.cause as Error).message).toContain('/nonexistent/secret');
  });
});
