// Property-based tests of the identity header the sidecar hands its app (x-forwarded-client-cert, Envoy's format:
// elements split by ",", pairs by ";", `key=value`, values with special characters quoted) and of the header
// hygiene in front of it: the value built for any valid peer parses back to exactly one element with By, Hash
// and URI, and copying a request's headers removes every identity header in any case while never splitting,
// merging or reordering the other fields.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import {
  copyRequestHeaders,
  INBOUND_FORWARDER_POLICY,
  OUTBOUND_ORIGIN_FORM,
} from '../../../src/sidecar/http-headers.js';
import { verifyPeer } from '../../../src/tls/verified-peer.js';
import { TestCa } from '../../helpers/test-ca.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 2000;

/** Envoy's XFCC grammar (config/http-conn-man/headers x-forwarded-client-cert), quotes and escapes included. */
function parseXfcc(value: string): Record<string, string>[] {
  const elements: Record<string, string>[] = [];
  let current: Record<string, string> = {};
  let key = '';
  let token = '';
  let quoted = false;
  let inKey = true;
  const endPair = (): void => {
    if (inKey) throw new Error(`pair without "=": ${JSON.stringify(token)}`);
    if (Object.hasOwn(current, key)) throw new Error(`duplicate key ${key}`);
    current[key] = token;
    key = '';
    token = '';
    inKey = true;
  };
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      if (ch === '\\') token += value[++i] ?? '';
      else if (ch === '"') quoted = false;
      else token += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === '=' && inKey) {
      key = token;
      token = '';
      inKey = false;
    } else if (ch === ';') endPair();
    else if (ch === ',') {
      endPair();
      elements.push(current);
      current = {};
    } else token += ch;
  }
  if (quoted) throw new Error('unterminated quote');
  endPair();
  elements.push(current);
  return elements;
}

const tdName = fc.stringMatching(/^[a-z0-9._-]{1,24}$/);
const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/).filter((s) => s !== '.' && s !== '..');
const spiffeId = fc
  .tuple(tdName, fc.array(segment, { minLength: 1, maxLength: 6 }))
  .map(([td, segs]) => SpiffeId.fromSegments(TrustDomain.parse(td), ...segs));
const sha256Hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));

describe('x-forwarded-client-cert (property)', () => {
  it(
    'ok/By;Hash;URI of any two valid IDs is one element that needs no quoting and parses back',
    () => {
      fc.assert(
        fc.property(spiffeId, spiffeId, sha256Hex, (own, peer, hash) => {
          // The same template as verified-peer.ts; the real function is exercised below with certificates.
          const value = `By=${own};Hash=${hash};URI=${peer}`;
          expect(value).not.toMatch(/[",\s\\]/);
          expect(parseXfcc(value)).toEqual([{ By: own.toString(), Hash: hash, URI: peer.toString() }]);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it('ok/verifyPeer builds exactly that element from real certificates with random IDs', async () => {
    const ca = await TestCa.create('example.org');
    const own = SpiffeId.parse('spiffe://example.org/ns/shop/sa/orders');
    const roots = [new X509Certificate(ca.rootPem)];
    const samples = fc.sample(fc.array(segment, { minLength: 1, maxLength: 6 }), { ...fuzzParams(12), numRuns: 12 });
    for (const segs of samples) {
      const svid = await ca.issue({ id: SpiffeId.fromSegments(ca.trustDomain, ...segs).toString() });
      const certificate = new X509Certificate(svid.certPem);
      // The chain as the leaf alone (no issuer sent); the socket is only what the result is cached on.
      const socket = {} as TLSSocket;
      const peer = verifyPeer(socket, ca.trustDomain, own, new Date(), [certificate.raw], roots);
      const hash = Buffer.from(await crypto.subtle.digest('SHA-256', certificate.raw)).toString('hex');
      expect(parseXfcc(peer.xfcc)).toEqual([{ By: own.toString(), Hash: hash, URI: svid.id }]);
    }
  });

  // Header names: identity headers in random case, hop-by-hop headers, and ordinary ones that look similar.
  const name = fc.oneof(
    fc.constantFrom(
      'x-forwarded-client-cert',
      'X-Forwarded-Client-Cert',
      'X-FORWARDED-CLIENT-CERT',
      'x-meshauth-user',
      'X-MeshAuth-Passport',
      'x-meshauth-passport',
      'x-meshauth-anything',
      'x-forwarded-client-certs',
      'x-meshauthx',
      'x-forwarded-for',
      'Host',
      'content-type',
      'accept',
      'X-Role',
      'Keep-Alive',
      'TE',
      'Upgrade',
      'Proxy-Authorization',
    ),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/),
  );
  const fieldValue = fc.oneof(
    fc.constantFrom('', 'a,b', 'By=spiffe://evil/x;URI=spiffe://td/ns/admin/sa/admin', '"q,;="', ' x '),
    fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n\0]/g, '')),
  );
  const rawHeaders = fc.array(fc.tuple(name, fieldValue), { maxLength: 16 });

  it(
    'ok/copyRequestHeaders drops every identity header in any case and keeps the other fields whole and in order',
    () => {
      fc.assert(
        fc.property(rawHeaders, fc.boolean(), (pairs, outbound) => {
          const raw = pairs.flat();
          const policy = outbound ? OUTBOUND_ORIGIN_FORM : INBOUND_FORWARDER_POLICY;
          const out: string[] = [];
          copyRequestHeaders(raw, policy, out);
          expect(out.length % 2).toBe(0);
          const kept: [string, string][] = [];
          for (let i = 0; i < out.length; i += 2) kept.push([out[i] as string, out[i + 1] as string]);
          for (const [n] of kept) {
            const lower = n.toLowerCase();
            expect(lower).not.toBe('x-forwarded-client-cert');
            if (lower.startsWith('x-meshauth-')) {
              expect(outbound && lower === 'x-meshauth-passport').toBe(true);
            }
          }
          // Every kept pair is an input pair, unchanged, in the input's order (a subsequence).
          let at = 0;
          for (const pair of kept) {
            while (at < pairs.length && !(pairs[at]?.[0] === pair[0] && pairs[at]?.[1] === pair[1])) at++;
            expect(at).toBeLessThan(pairs.length);
            at++;
          }
          // Ordinary headers (not identity, hop-by-hop or named by Connection) all survive.
          const removable = new Set([
            'connection',
            'keep-alive',
            'proxy-connection',
            'proxy-authenticate',
            'proxy-authorization',
            'te',
            'trailer',
            'transfer-encoding',
            'upgrade',
            'http2-settings',
            'expect',
          ]);
          const ordinary = pairs.filter(([n]) => {
            const lower = n.toLowerCase();
            return !removable.has(lower) && lower !== 'x-forwarded-client-cert' && !lower.startsWith('x-meshauth-');
          });
          expect(kept.filter(([n]) => !n.toLowerCase().startsWith('x-meshauth-'))).toEqual(ordinary);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );
});
