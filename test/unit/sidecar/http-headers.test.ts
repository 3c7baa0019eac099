// Header hygiene: identity and hop-by-hop headers stripped in every case variant, Connection tokens processed before
// identity headers are set, passport kept only outbound.
import { describe, expect, it } from 'vitest';
import {
  copyH2RequestHeaders,
  copyRequestHeaders,
  HAS_BODY,
  hasTransferCoding,
  INBOUND_FORWARDER_POLICY,
  INBOUND_POLICY,
  OUTBOUND_ORIGIN_FORM,
  OUTBOUND_PROXY_FORM,
  responseHeadersH1,
  responseHeadersH2,
  STRIPPED_IDENTITY,
} from '../../../src/sidecar/http-headers.js';

const names = (out: string[]) => out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

describe('copyRequestHeaders', () => {
  it('fail/identity headers in any case and duplicates are removed inbound', () => {
    const out: string[] = [];
    copyRequestHeaders(
      [
        'Host',
        'b',
        'X-Forwarded-Client-Cert',
        'URI=spiffe://evil',
        'x-FORWARDED-client-cert',
        'URI=spiffe://evil2',
        'X-Meshauth-User',
        'e30',
        'x-meshauth-passport',
        'p',
        'Accept',
        '*/*',
      ],
      INBOUND_POLICY,
      out,
    );
    expect(out).toEqual(['Host', 'b', 'Accept', '*/*']);
  });

  it('fail/inbound drops what a peer says about a client unless it is trusted to forward; neither sets its own', () => {
    const raw = [
      'Host',
      'b',
      'X-Forwarded-Host',
      'admin.internal',
      'Forwarded',
      'host=admin.internal',
      'X-Forwarded-User',
      'admin',
      'X-Real-IP',
      '10.1.2.3',
      'Accept',
      '*/*',
    ];
    const untrusted: string[] = [];
    copyRequestHeaders(raw, INBOUND_POLICY, untrusted);
    expect(untrusted).toEqual(['Host', 'b', 'Accept', '*/*']);
    const forwarder: string[] = [];
    copyRequestHeaders(raw, INBOUND_FORWARDER_POLICY, forwarder);
    expect(forwarder).toEqual(raw);
    const h2: string[] = [];
    copyH2RequestHeaders(
      { ':authority': 'b', 'x-forwarded-host': 'admin.internal', forwarded: 'for=x' },
      h2,
      INBOUND_POLICY,
    );
    expect(h2).toEqual(['host', 'b']);
  });

  it('fail/inbound drops names with "_" (an app reads x_meshauth_user as x-meshauth-user); outbound keeps them', () => {
    const raw = ['Host', 'b', 'X_Meshauth_User', 'forged', 'x_role', 'admin', 'Accept', '*/*'];
    const inbound: string[] = [];
    copyRequestHeaders(raw, INBOUND_POLICY, inbound);
    expect(inbound).toEqual(['Host', 'b', 'Accept', '*/*']);
    const outbound: string[] = [];
    copyRequestHeaders(raw, OUTBOUND_ORIGIN_FORM, outbound);
    expect(outbound).toContain('x_role');
  });

  it('ok/outbound keeps the passport but strips other x-meshauth-* and XFCC', () => {
    const out: string[] = [];
    copyRequestHeaders(
      ['Host', 'b', 'X-Meshauth-Passport', 'p', 'X-Meshauth-User', 'u', 'X-Forwarded-Client-Cert', 'x'],
      OUTBOUND_ORIGIN_FORM,
      out,
    );
    expect(out).toEqual(['Host', 'b', 'X-Meshauth-Passport', 'p']);
  });

  it('fail/hop-by-hop and Connection-named headers are removed; host and content-length are protected', () => {
    const out: string[] = [];
    const flags = copyRequestHeaders(
      [
        'Host',
        'b',
        'Connection',
        'keep-alive, X-Custom, x-forwarded-client-cert, content-length, host',
        'Keep-Alive',
        'timeout=5',
        'X-Custom',
        'hop',
        'Transfer-Encoding',
        'chunked',
        'TE',
        'trailers',
        'Upgrade',
        'h2c',
        'Proxy-Authorization',
        'Basic x',
        'Expect',
        '100-continue',
        'Content-Length',
        '5',
      ],
      INBOUND_POLICY,
      out,
    );
    expect(names(out)).toEqual(['host', 'content-length']);
    expect(flags & HAS_BODY).toBe(HAS_BODY);
  });

  it('ok/no body without Content-Length or Transfer-Encoding, and for Content-Length: 0', () => {
    expect(copyRequestHeaders(['Host', 'b'], INBOUND_POLICY, []) & HAS_BODY).toBe(0);
    expect(copyRequestHeaders(['Host', 'b', 'Content-Length', '0'], INBOUND_POLICY, []) & HAS_BODY).toBe(0);
  });

  it('fail/a received XFCC or x-meshauth-* other than the passport is flagged STRIPPED_IDENTITY; the passport is not', () => {
    const flag = (raw: string[], policy = INBOUND_POLICY) => copyRequestHeaders(raw, policy, []) & STRIPPED_IDENTITY;
    expect(flag(['Host', 'b', 'X-Forwarded-Client-Cert', 'URI=spiffe://evil'])).toBe(STRIPPED_IDENTITY);
    expect(flag(['Host', 'b', 'x-MESHAUTH-user', 'e30'])).toBe(STRIPPED_IDENTITY);
    expect(flag(['Host', 'b', 'X-Meshauth-Passport', 'a.b.c'])).toBe(0);
    expect(flag(['Host', 'b', 'X-Meshauth-Passport', 'a.b.c'], OUTBOUND_ORIGIN_FORM)).toBe(0);
    expect(flag(['Host', 'b', 'X-Forwarded-For', '1.2.3.4', 'Connection', 'x-meshauth-user'])).toBe(0);
  });

  it('ok/proxy form drops the incoming Host (the caller sets the URI authority)', () => {
    const out: string[] = [];
    copyRequestHeaders(['Host', 'spoofed', 'Accept', 'x'], OUTBOUND_PROXY_FORM, out);
    expect(names(out)).toEqual(['accept']);
  });
});

describe('copyH2RequestHeaders', () => {
  it('fail/pseudo-headers, identity headers removed; :authority becomes host', () => {
    const out: string[] = [];
    copyH2RequestHeaders(
      {
        ':method': 'GET',
        ':path': '/',
        ':authority': 'b.mesh',
        ':scheme': 'https',
        'x-forwarded-client-cert': 'URI=spiffe://evil',
        'x-meshauth-user': 'u',
        accept: 'a',
        'set-cookie': ['1', '2'],
      },
      out,
      INBOUND_POLICY,
    );
    expect(out).toEqual(['accept', 'a', 'set-cookie', '1', 'set-cookie', '2', 'host', 'b.mesh']);
  });

  it('fail/names with "_" are dropped when asked (inbound and external listener), kept otherwise', () => {
    const headers = { ':authority': 'b', x_role: 'admin', x_meshauth_user: 'u', 'x-role': 'user' };
    const dropped: string[] = [];
    copyH2RequestHeaders(headers, dropped, INBOUND_POLICY);
    expect(dropped).toEqual(['x-role', 'user', 'host', 'b']);
    const kept: string[] = [];
    copyH2RequestHeaders(headers, kept, OUTBOUND_ORIGIN_FORM);
    expect(kept).toContain('x_role');
  });

  it('fail/identity headers other than the passport are flagged STRIPPED_IDENTITY', () => {
    expect(
      copyH2RequestHeaders({ ':authority': 'b', 'x-meshauth-user': 'u' }, [], INBOUND_POLICY) & STRIPPED_IDENTITY,
    ).toBe(STRIPPED_IDENTITY);
    expect(
      copyH2RequestHeaders({ ':authority': 'b', 'x-meshauth-passport': 'p', accept: 'a' }, [], INBOUND_POLICY),
    ).toBe(0);
  });
});

describe('response headers', () => {
  const raw = [
    'Content-Type',
    'text/plain',
    'Connection',
    'x-drop',
    'X-Drop',
    '1',
    'Transfer-Encoding',
    'chunked',
    'Set-Cookie',
    'a',
    'Set-Cookie',
    'b',
  ].map((s) => Buffer.from(s));
  it('ok/HTTP/1: hop-by-hop and Connection-named headers dropped, repeats kept', () => {
    expect(responseHeadersH1(raw, [])).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a', 'Set-Cookie', 'b']);
  });
  it('ok/HTTP/2: a flat list, :status first, lower-case names, a repeated name once per value', () => {
    expect(responseHeadersH2(200, raw)).toEqual([
      ':status',
      '200',
      'content-type',
      'text/plain',
      'set-cookie',
      'a',
      'set-cookie',
      'b',
    ]);
  });
  it('fail/HTTP/2: the names Connection lists are dropped, never a pseudo-header', () => {
    const listed = ['Connection', 'x-trace, :status', 'X-Trace', '1', 'Content-Length', '0'].map((v) => Buffer.from(v));
    expect(responseHeadersH2(503, listed)).toEqual([':status', '503', 'content-length', '0']);
  });
});

describe('hasTransferCoding', () => {
  const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));
  it.each([
    ['ok/no Transfer-Encoding', raw('content-length', '5'), false],
    ['ok/chunked', raw('Transfer-Encoding', 'chunked'), false],
    ['ok/identity, chunked', raw('transfer-encoding', 'identity, chunked'), false],
    ['fail/gzip, chunked', raw('transfer-encoding', 'gzip, chunked'), true],
    ['fail/gzip and chunked on two lines', raw('transfer-encoding', 'gzip', 'transfer-encoding', 'chunked'), true],
    ['fail/an unknown coding', raw('TRANSFER-ENCODING', 'xchunked'), true],
  ])('%s', (_name, headers, coded) => {
    expect(hasTransferCoding(headers)).toBe(coded);
  });
});
