// true/false settings given as text (`MESHAUTH_OUTBOUND_HTTP2=no`, `tls12: yes`): the message says what is accepted
// and names the variable or key, where zod's own read "Invalid input: expected boolean, received string".
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, sidecarConfigFromObject } from '../../../src/config/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const ENV = {
  MESHAUTH_TRUST_DOMAIN: 'example.org',
  MESHAUTH_CA_URL: 'https://ca.example:8443',
  MESHAUTH_CA_BUNDLE: '/b.pem',
  MESHAUTH_CA_TOKEN: '/t',
};
const BASE = {
  trustDomain: 'example.org',
  ca: { url: 'https://ca.example:8443', bundle: '/b.pem', token: '/t' },
};
const END_USER = { issuers: [{ issuer: 'https://idp.example', audiences: ['api'], algorithms: ['ES256'] }] };

describe('boolean settings', () => {
  it.each([
    ['MESHAUTH_OUTBOUND_HTTP2', 'no', 'outbound.http2'],
    ['MESHAUTH_OUTBOUND_HTTP2', 'yes', 'outbound.http2'],
    ['MESHAUTH_INBOUND_TLS12', 'TRUE', 'inbound.tls12'],
  ])('fail/%s=%s names the variable and what it accepts', (name, value, key) => {
    const message = configRefusalMessage(() => loadSidecarConfig(undefined, { ...ENV, [name]: value }));
    expect(message).toBe(
      `environment: ${key} (from ${name}): expected true or false (or 1 or 0), not ${JSON.stringify(value)}`,
    );
  });

  it.each([
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('ok/MESHAUTH_OUTBOUND_HTTP2=%s', (value, expected) => {
    expect(loadSidecarConfig(undefined, { ...ENV, MESHAUTH_OUTBOUND_HTTP2: value }).outbound.http2).toBe(expected);
  });

  it.each([
    ['inbound.tls12', { inbound: { tls12: 'yes' } }, 'the text "yes"'],
    ['outbound.http2', { outbound: { http2: 'false' } }, 'the text "false"'],
    ['inbound.endUser.required', { inbound: { endUser: { ...END_USER, required: 'on' } } }, 'the text "on"'],
    [
      'inbound.endUser.forwardOriginalToken',
      { inbound: { endUser: { ...END_USER, forwardOriginalToken: 1 } } },
      'the number 1',
    ],
  ])('fail/%s given as %j says true or false', (key, document, shown) => {
    const message = configRefusalMessage(() => sidecarConfigFromObject({ ...BASE, ...document }, 'sidecar.yaml'));
    expect(message).toBe(`sidecar.yaml: ${key}: expected true or false, not ${shown}`);
  });

  it('fail/inbound.tls12 set by MESHAUTH_INBOUND_END_USER JSON as text names the variable', () => {
    const message = configRefusalMessage(() =>
      loadSidecarConfig(undefined, {
        ...ENV,
        MESHAUTH_INBOUND_END_USER: JSON.stringify({ ...END_USER, required: 'yes' }),
      }),
    );
    expect(message).toBe(
      'environment: inbound.endUser.required (from MESHAUTH_INBOUND_END_USER): expected true or false, not the text "yes"',
    );
  });
});
