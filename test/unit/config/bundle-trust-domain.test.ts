// ca.bundle checked once at config load against trustDomain: a bundle whose roots all name other trust domains is
// refused (the agent used to retry it for ever); roots that name no trust domain, a bundle that also holds a root of
// ours, and a file that cannot be read yet are let through (the agent reads the file at each bootstrap).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleTrustDomains, loadSidecarConfig } from '../../../src/config/index.js';
import { generateKeyPair, KEY_ALGORITHMS, randomSerialHex, x509 } from '../../../src/pki/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';
import { TestCa } from '../../helpers/test-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-bundle-td-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bundles: Record<string, string> = {};

/** A root as a CA outside meshauth makes it: no URI SAN, so it names no trust domain. */
async function rootWithoutUri(): Promise<string> {
  const keys = await generateKeyPair('p256');
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: 'CN=plain root',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return `${cert.toString('pem')}\n`;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  const example = await TestCa.create('example.org');
  const other = await TestCa.create('other.org');
  const third = await TestCa.create('third.org');
  const plain = await rootWithoutUri();
  bundles.example = file('example.pem', example.bundlePem);
  bundles.exampleAndThird = file('example-third.pem', `${example.bundlePem}${third.bundlePem}`);
  bundles.exampleAndOther = file('example-other.pem', `${example.bundlePem}${other.bundlePem}`);
  bundles.plain = file('plain.pem', plain);
  bundles.exampleAndPlain = file('example-plain.pem', `${example.bundlePem}${plain}`);
  bundles.garbage = file('garbage.pem', 'not a certificate\n');
});

function config(name: string, trustDomain: string, bundle: string): string {
  return file(
    name,
    `trustDomain: ${trustDomain}\nca: { url: "https://127.0.0.1:1", bundle: ${bundle}, token: /nonexistent }\n`,
  );
}

describe('ca.bundle of another trust domain at config load', () => {
  it('fail/example.org bundle, trustDomain other.org → names the file, both keys and both trust domains', () => {
    const path = config('mismatch.yaml', 'other.org', bundles.example as string);
    expect(configRefusalMessage(() => loadSidecarConfig(path))).toBe(
      `${path}: ca.bundle: ${bundles.example} is the trust bundle of trust domain example.org, but trustDomain is ` +
        'other.org: no CA of other.org can be authenticated with it (set ca.bundle to the bundle.pem of the CA of ' +
        'other.org, or trustDomain to example.org)',
    );
  });

  it('fail/two foreign trust domains → both named', () => {
    const path = config('two.yaml', 'other.org', bundles.exampleAndThird as string);
    const message = configRefusalMessage(() => loadSidecarConfig(path));
    expect(message).toContain(
      'is the trust bundle of trust domains example.org, third.org, but trustDomain is other.org',
    );
    expect(message).toContain('or trustDomain to one of example.org, third.org)');
  });

  it('fail/set by the environment → the variables are named beside the keys', () => {
    const path = config('env.yaml', 'example.org', bundles.example as string);
    const message = configRefusalMessage(() => loadSidecarConfig(path, { MESHAUTH_TRUST_DOMAIN: 'other.org' }));
    expect(message).toContain('but trustDomain (from MESHAUTH_TRUST_DOMAIN) is other.org');
  });

  it.each([
    ['ok/the bundle of the trust domain', 'example.org', 'example'],
    ['ok/a bundle holding a root of ours beside a foreign one', 'other.org', 'exampleAndOther'],
    ['ok/a root naming no trust domain (cannot tell)', 'other.org', 'plain'],
    ['ok/a foreign root beside one naming no trust domain (cannot tell)', 'other.org', 'exampleAndPlain'],
    ['ok/a file that is not PEM (left to the agent)', 'other.org', 'garbage'],
  ])('%s → loads', (name, trustDomain, bundle) => {
    const path = config(`${name.replace(/\W+/g, '-')}.yaml`, trustDomain, bundles[bundle] as string);
    expect(loadSidecarConfig(path).trustDomain.name).toBe(trustDomain);
  });

  it('ok/a bundle file not there yet → loads (the agent reports it when it reads it)', () => {
    const path = config('missing.yaml', 'other.org', join(dir, 'absent.pem'));
    expect(loadSidecarConfig(path).ca.bundle).toBe(join(dir, 'absent.pem'));
  });
});

describe('ca.bundle with more certificates than a CA publishes, at config load', () => {
  it('fail/33 different certificates → refused at start, naming the file, the count and the fix', async () => {
    const example = await TestCa.create('example.org');
    const plain = await Promise.all(Array.from({ length: 32 }, () => rootWithoutUri()));
    const many = file('many.pem', `${example.bundlePem}${plain.join('')}`);
    const path = config('many.yaml', 'example.org', many);
    expect(configRefusalMessage(() => loadSidecarConfig(path))).toBe(
      `${path}: ca.bundle: ${many} holds 33 certificates, more than 32: give it the CA's bundle.pem, not a system ` +
        'CA bundle or a chain',
    );
    // 32 different ones, and one root given 40 times (it counts once), load.
    const enough = file('enough.pem', `${example.bundlePem}${plain.slice(1).join('')}`);
    expect(loadSidecarConfig(config('enough.yaml', 'example.org', enough)).ca.bundle).toBe(enough);
    const repeated = file('repeated.pem', example.bundlePem.repeat(40));
    expect(loadSidecarConfig(config('repeated.yaml', 'example.org', repeated)).ca.bundle).toBe(repeated);
  });
});

describe('bundleTrustDomains', () => {
  it('ok/every root naming a trust domain → the trust domains', async () => {
    const ca = await TestCa.create('example.org');
    expect(bundleTrustDomains(ca.bundlePem)).toEqual(['example.org']);
  });

  it('fail/no certificate → throws, as the PEM parser does', () => {
    expect(() => bundleTrustDomains('')).toThrow(/no PEM certificate/);
  });
});
