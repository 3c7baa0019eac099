// The gateway's settings that name the file of a secret (`ca.token`, `oidc.clientSecretFile`, `session.keys[]`,
// `tls.key`) refuse the secret itself, naming the file and the key, never the value, as the sidecar's `ca.token` does
// (secret-path.ts). Review follow-up: the gateway's schema took any non-empty string there, so a join token, a client
// secret or a PEM key pasted in place of its path passed validation and was repeated in the "cannot be read" error
// of every start (`session.keys[0]: session key file <the key>: cannot be read (ENOENT)`).
import { describe, expect, it } from 'vitest';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const JOIN_TOKEN = 'DZWxRRCSCems4XARTR6AiHSnSCOmFqPh3vADbEuinec';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl';
const CLIENT_SECRET = 'q8Xv2m3NrT5kLw9ZpB4yHc7JdF6sGa1E';
const SESSION_KEY = 'S2V5IGZvciB0aGUgc2Vzc2lvbiBjb29raWVzIG9mIHRlc3Q=';
const PEM = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKd7\n-----END PRIVATE KEY-----\n';

const base = () => ({
  trustDomain: 'example.org',
  ca: { url: 'https://meshauth-ca.meshauth:8443', bundle: 'bundle.pem', token: '/var/run/secrets/meshauth/token' },
  tls: { cert: 'gateway.crt', key: 'gateway.key' },
  session: { keys: ['session-2026-12.key', 'session-2026-11.key'] },
  oidc: {
    issuer: 'https://login.example.com',
    clientId: 'meshauth-gateway',
    clientSecretFile: 'client.secret',
    redirectUri: 'https://shop.example.com/.meshauth/callback',
  },
  routes: [
    {
      name: 'web',
      match: { host: 'shop.example.com' },
      to: { address: 'web.shop:15006', ids: ['spiffe://example.org/ns/shop/sa/web'] },
    },
  ],
});

type Doc = ReturnType<typeof base>;

const expected = (holding: string) =>
  `expected the path of a file holding ${holding}, not ${holding} itself (a file in the working directory: ./name)`;

describe('gateway config: a secret where its file belongs', () => {
  const cases: [string, string, (d: Doc) => void, string, string][] = [
    ['ca.token', 'a join token', (d) => (d.ca.token = JOIN_TOKEN), JOIN_TOKEN, expected('the token')],
    ['ca.token', 'a service-account JWT', (d) => (d.ca.token = JWT), JWT, expected('the token')],
    [
      'oidc.clientSecretFile',
      'the client secret',
      (d) => (d.oidc.clientSecretFile = CLIENT_SECRET),
      CLIENT_SECRET,
      expected('the client secret'),
    ],
    [
      'session.keys[1]',
      'a base64 session key',
      (d) => (d.session.keys[1] = SESSION_KEY),
      SESSION_KEY,
      expected('the session key'),
    ],
    ['tls.key', 'a PEM key', (d) => (d.tls.key = PEM), 'MC4CAQAwBQYDK2Vw', expected('the private key')],
  ];
  for (const [key, name, edit, secret, wording] of cases) {
    it(`fail/${key} = <${name}> → the file and the key, never the value`, () => {
      const doc = base();
      edit(doc);
      const message = configRefusalMessage(() => gatewayConfigFromObject(doc, 'gateway.yaml'));
      expect(message).toBe(`gateway.yaml: ${key}: ${wording}`);
      expect(message).not.toContain(secret.slice(0, 16));
    });
  }

  it('ok/the paths a deployment uses, and a long file name written as ./name', () => {
    const doc = base();
    doc.ca.token = '/var/run/secrets/tokens/meshauth';
    doc.tls.key = '/etc/meshauth/tls/tls.key';
    doc.session.keys = ['/etc/meshauth/session/2026-12.key', `./${SESSION_KEY.replace('=', '')}`];
    doc.oidc.clientSecretFile = '/etc/meshauth/oidc/client-secret';
    const config = gatewayConfigFromObject(doc, 'gateway.yaml');
    expect(config.ca.token).toBe('/var/run/secrets/tokens/meshauth');
    expect(config.session.keys).toHaveLength(2);
    expect(config.oidc?.clientSecretFile).toBe('/etc/meshauth/oidc/client-secret');
  });
});
