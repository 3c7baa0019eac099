// The caBundle patch `ca init --k8s-secret` prints, applied with a strict JSON Patch applier to the
// MutatingWebhookConfiguration as deploy/base ships it (no caBundle: the field is left for this patch to set).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { caBundlePatchCommand, caBundlePatchCommandFor } from '../../../src/ca/k8s-manifests.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const SHIPPED = new URL('../../../deploy/base/mutating-webhook.yaml', import.meta.url).pathname;
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

type Configuration = { webhooks: { clientConfig: Record<string, unknown> }[] };

/** The JSON Patch inside `kubectl patch … --type=json -p '<ops>'`. */
function opsOf(command: string): Operation[] {
  const match = /--type=json -p '(.*)'$/.exec(command);
  if (match?.[1] === undefined) throw new Error(`no JSON patch in ${command}`);
  return JSON.parse(match[1]) as Operation[];
}

describe('caBundlePatchCommand', () => {
  it('ok/applies strictly to the shipped configuration, which has no caBundle, and sets it', () => {
    const shipped = parse(readFileSync(SHIPPED, 'utf8')) as Configuration;
    expect(shipped.webhooks[0]?.clientConfig.caBundle).toBeUndefined();
    const patched = applyJsonPatch(shipped, opsOf(caBundlePatchCommand(CA_PEM))) as Configuration;
    expect(patched.webhooks[0]?.clientConfig.caBundle).toBe(Buffer.from(CA_PEM).toString('base64'));
    expect(patched.webhooks[0]?.clientConfig.service).toEqual(shipped.webhooks[0]?.clientConfig.service);
  });

  it('ok/running it again (a caBundle already set) applies as well and replaces the value', () => {
    const shipped = parse(readFileSync(SHIPPED, 'utf8')) as Configuration;
    const once = applyJsonPatch(shipped, opsOf(caBundlePatchCommand('old'))) as Configuration;
    const twice = applyJsonPatch(once, opsOf(caBundlePatchCommand(CA_PEM))) as Configuration;
    expect(twice.webhooks[0]?.clientConfig.caBundle).toBe(Buffer.from(CA_PEM).toString('base64'));
  });

  it('ok/one op per webhook, each an add; a placeholder value is written as given', () => {
    const ops = opsOf(caBundlePatchCommandFor('<base64 of ca.pem>', 2));
    expect(ops).toEqual([
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: '<base64 of ca.pem>' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: '<base64 of ca.pem>' },
    ]);
  });
});
