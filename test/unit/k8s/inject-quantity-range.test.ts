// Quantities the cluster cannot hold: `config.meshauth.dev/proxy-cpu: "1e400"` (and 1e18 cores, -1, 0.0000000001,
// 1e4294967296) passed the injector's check, which asked only whether the text read as a quantity, and went into the
// sidecar's resources: the API server refused the whole pod, rounded the value up, or kept one that its kubelet reads
// as another (1e4294967296 is 1 to Kubernetes' parser). Now refused as any unusable annotation is: `meshauth inject`
// exits 2 and the webhook admits the pod without its sidecar, with a warning naming the annotation.
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../src/errors/index.js';
import { parseInjectConfig, resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { checkQuantity, parseQuantity } from '../../../src/k8s/inject-quantity.js';

const TOO_LARGE = 'expected at most 9223372036854775807m: Kubernetes holds no larger resource quantity';
const NEGATIVE = 'expected a quantity of 0 or more: a resource amount is never negative';
const TOO_PRECISE = 'expected a whole number of nano-units (1n = 0.000000001): Kubernetes rounds a finer value up';
const NOT_QUANTITY = 'expected a Kubernetes quantity such as 100m, 1, 128Mi or 1Gi';
/** 2^-60 Ei: one byte, written with 60 decimals that the binary suffix cancels. */
const ONE_BYTE_IN_EI = '0.000000000000000000867361737988403547205962240695953369140625Ei';

describe('checkQuantity: what Kubernetes holds as written', () => {
  it.each([
    ['500m', 500_000_000n],
    ['1Gi', 2n ** 30n * 1_000_000_000n],
    ['1e3', 1_000_000_000_000n],
    ['1E3', 1_000_000_000_000n],
    ['0', 0n],
    ['-0', 0n],
    ['0e400', 0n],
    ['+1', 1_000_000_000n],
    ['1.', 1_000_000_000n],
    ['.5', 500_000_000n],
    ['0.5Ki', 512_000_000_000n],
    ['250000000n', 250_000_000n],
    ['0.000000001', 1n],
    ['1e-9', 1n],
    ['8Pi', 2n ** 53n * 1_000_000_000n],
    ['9223372036854775807m', (2n ** 63n - 1n) * 1_000_000n],
    ['9223372036854775.807', (2n ** 63n - 1n) * 1_000_000n],
    [ONE_BYTE_IN_EI, 1_000_000_000n],
  ])('ok/%s', (text, nanos) => {
    expect(checkQuantity(text)).toEqual({ ok: true, nanos });
  });

  it.each([
    ['1e400', TOO_LARGE],
    ['1e18', TOO_LARGE],
    ['1E', TOO_LARGE],
    ['1e16', TOO_LARGE],
    ['9Pi', TOO_LARGE],
    ['9223372036854775808m', TOO_LARGE],
    ['1e2147483647', TOO_LARGE],
    ['-1', NEGATIVE],
    ['-500m', NEGATIVE],
    ['-1e400', NEGATIVE],
    ['0.0000000001', TOO_PRECISE],
    ['1e-10', TOO_PRECISE],
    ['1.5n', TOO_PRECISE],
    ['1e-2147483647', TOO_PRECISE],
    [`0.${'0'.repeat(200_000)}1`, TOO_PRECISE],
    [`0.1${'0'.repeat(200_000)}1`, TOO_PRECISE],
    [`1${'0'.repeat(200_000)}1`, TOO_LARGE],
    // Kubernetes keeps the exponent as an int32: 1e4294967296 would be 1, so it is no quantity here.
    ['1e4294967296', NOT_QUANTITY],
    [`1e${'9'.repeat(400)}`, NOT_QUANTITY],
    ['1e-4294967296', NOT_QUANTITY],
    ['lots', NOT_QUANTITY],
    ['Infinity', NOT_QUANTITY],
    ['NaN', NOT_QUANTITY],
    ['1e', NOT_QUANTITY],
    ['', NOT_QUANTITY],
  ])('fail/%s', (text, expected) => {
    expect(checkQuantity(text)).toEqual({ ok: false, expected });
    expect(parseQuantity(text)).toBeUndefined();
  });

  it('ok/parseQuantity gives base units', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('1Gi')).toBe(2 ** 30);
    expect(parseQuantity('1e3')).toBe(1000);
  });
});

type Json = Record<string, unknown>;

function review(annotations: Json, failClosed = false) {
  const pod = {
    metadata: { name: 'p', namespace: 'shop', annotations },
    spec: { containers: [{ name: 'app', image: 'a:1' }] },
  };
  return reviewAdmission(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'shop',
        object: pod,
      },
    },
    resolveInjectConfig({ trustDomain: 'example.org', failClosed }),
  );
}

describe('the webhook: an annotation the cluster cannot hold', () => {
  it.each([
    ['config.meshauth.dev/proxy-cpu', '1e400', TOO_LARGE],
    ['config.meshauth.dev/proxy-cpu', '1e18', TOO_LARGE],
    ['config.meshauth.dev/proxy-memory', '-1', NEGATIVE],
    ['config.meshauth.dev/proxy-cpu', '0.0000000001', TOO_PRECISE],
  ])('fail/%s: %s → admitted without the sidecar, the warning names the annotation', (key, value, expected) => {
    const outcome = review({ [key]: value });
    expect(outcome.result).toBe('error');
    expect(outcome.reason).toBe('inject_failed');
    const response = (outcome.body as { response: Json }).response;
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.warnings).toEqual([`meshauth: sidecar not injected: Pod shop/p: ${key}: ${expected}`]);
  });

  it('fail/with failClosed the pod is refused with the same message', () => {
    const outcome = review({ 'config.meshauth.dev/proxy-cpu': '1e400' }, true);
    expect((outcome.body as { response: Json }).response).toMatchObject({
      allowed: false,
      status: {
        code: 400,
        message: `meshauth: sidecar not injected: Pod shop/p: config.meshauth.dev/proxy-cpu: ${TOO_LARGE}`,
      },
    });
  });

  it.each(['500m', '1Gi', '1e3'])('ok/%s is injected', (value) => {
    expect(review({ 'config.meshauth.dev/proxy-memory': value }).result).toBe('injected');
  });
});

describe('inject.yaml proxy quantities', () => {
  it.each([
    ['cpuLimit: "1e400"', 'proxy.cpuLimit', TOO_LARGE],
    ['memory: "-1"', 'proxy.memory', NEGATIVE],
    ['cpu: "0.0000000001"', 'proxy.cpu', TOO_PRECISE],
  ])('fail/%s names the key and what was expected', (line, key, expected) => {
    let caught: unknown;
    try {
      parseInjectConfig(`trustDomain: example.org\nproxy:\n  ${line}\n`, 'inject.yaml');
    } catch (error) {
      caught = error;
    }
    expect(isMeshauthError(caught, 'MESHAUTH_ERR_CONFIG_INVALID')).toBe(true);
    expect((caught as Error).message).toBe(`inject.yaml: ${key}: ${expected}`);
  });
});
