// The inbound pipeline's pieces without sockets: runStages (sync path, async continuation, first error answered
// once), the authorize stage over the real policy authorizer, the authenticate stage's fail-closed rules, and the
// identity-headers stage (strip, then set). A recording Sink stands in for H1Sink/H2Sink.
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { compilePolicy } from '../../../src/authz/policy/compile-policy.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { SpiffeId } from '../../../src/identity/index.js';
import type { ForwardHandler } from '../../../src/sidecar/forward-handler.js';
import { copyRequestHeaders, INBOUND_POLICY } from '../../../src/sidecar/http-headers.js';
import { policyAuthorizer } from '../../../src/sidecar/inbound/policy-authorizer.js';
import { Exchange, runStages, type Sink, type Stage } from '../../../src/sidecar/pipeline/exchange.js';
import {
  authenticateWith,
  authorizeWith,
  identityHeaders,
  peerUnexpired,
} from '../../../src/sidecar/pipeline/stages.js';
import { Metrics, silentLogger } from '../../../src/telemetry/index.js';
import type { VerifiedPeer } from '../../../src/tls/index.js';
import { logLines } from '../../helpers/log-lines.js';

const PEER_ID = 'spiffe://example.org/ns/shop/sa/frontend';

class RecordingSink implements Sink {
  readonly h2 = false;
  readonly rejected: Array<{ code: string; headers?: Record<string, string>; body?: Record<string, string> }> = [];
  readonly headers: IncomingHttpHeaders;
  constructor(readonly rawHeaders: string[]) {
    const headers: IncomingHttpHeaders = {};
    for (let i = 0; i < rawHeaders.length; i += 2)
      headers[(rawHeaders[i] as string).toLowerCase()] ??= rawHeaders[i + 1];
    this.headers = headers;
  }
  get authority(): string {
    return this.headers.host ?? '';
  }
  readonly sourceIp = '127.0.0.1';
  refusal(): MeshauthError | undefined {
    return undefined;
  }
  copyHeaders(out: string[]): number {
    return copyRequestHeaders(this.rawHeaders, INBOUND_POLICY, out);
  }
  body(): null {
    return null;
  }
  reject(
    error: MeshauthError,
    headers?: Readonly<Record<string, string>>,
    body?: Readonly<Record<string, string>>,
  ): void {
    this.rejected.push({
      code: error.code,
      ...(headers ? { headers: { ...headers } } : {}),
      ...(body ? { body: { ...body } } : {}),
    });
  }
  forwardHandler(): ForwardHandler {
    throw new Error('not forwarded in unit tests');
  }
  onClose(): void {}
  closed = false;
}

const peer: VerifiedPeer = {
  id: SpiffeId.parse(PEER_ID),
  idString: PEER_ID,
  hash: 'ab',
  xfcc: `By=spiffe://example.org/ns/shop/sa/orders;Hash=ab;URI=${PEER_ID}`,
  publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
  thumbprint: 'x',
  notAfterMs: Date.parse('2026-12-02T12:00:00Z'),
};

function exchange(raw: string[], target = '/orders/1', method = 'GET'): { ex: Exchange; sink: RecordingSink } {
  const sink = new RecordingSink(raw);
  return { ex: new Exchange(sink, peer, method, target, 15006, 0), sink };
}

const rejections: Array<[Exchange, MeshauthError]> = [];
const onRejected = (ex: Exchange, error: MeshauthError) => rejections.push([ex, error]);

describe('runStages', () => {
  it('ok/synchronous stages run in order without a promise', () => {
    const order: number[] = [];
    const { ex } = exchange(['Host', 'orders']);
    runStages([() => void order.push(1), () => void order.push(2)], ex, onRejected);
    expect(order).toEqual([1, 2]);
  });

  it('ok/an async stage continues with the next one after it settles', async () => {
    const order: number[] = [];
    const { ex } = exchange(['Host', 'orders']);
    const done = new Promise<void>((resolve) => {
      const stages: Stage[] = [async () => void order.push(1), () => void order.push(2), () => resolve()];
      runStages(stages, ex, onRejected);
    });
    expect(order).toEqual([1]); // the stage after the async one waits for its promise
    await done;
    expect(order).toEqual([1, 2]);
  });

  it('fail/the first error is answered once and stops the list', async () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    const before = rejections.length;
    let after = false;
    runStages(
      [
        () => {
          throw new MeshauthError('MESHAUTH_ERR_FORBIDDEN', 'no');
        },
        () => {
          after = true;
        },
      ],
      ex,
      onRejected,
    );
    expect(after).toBe(false);
    expect(sink.rejected).toEqual([{ code: 'MESHAUTH_ERR_FORBIDDEN' }]);
    expect(rejections.length).toBe(before + 1);
  });

  it('ok/a stage that settles after the caller went away is followed by nothing: no next stage, no answer', async () => {
    const before = rejections.length;
    for (const settle of ['resolve', 'reject'] as const) {
      const { ex, sink } = exchange(['Host', 'orders']);
      let after = false;
      let release: () => void = () => undefined;
      const pending = new Promise<void>((resolve) => {
        release = resolve;
      });
      const stage: Stage = async () => {
        await pending;
        if (settle === 'reject') throw new MeshauthError('MESHAUTH_ERR_FORBIDDEN', 'no');
      };
      const next: Stage = () => {
        after = true;
      };
      runStages([stage, next], ex, onRejected);
      sink.closed = true; // the caller reset the stream while the stage waited
      release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(after, settle).toBe(false);
      expect(sink.rejected, settle).toEqual([]);
    }
    expect(rejections.length).toBe(before);
  });
});

describe('peer validity stage', () => {
  it('ok/a request before the peer SVID notAfter goes on', () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    const reached: boolean[] = [];
    runStages([peerUnexpired(() => peer.notAfterMs - 1), () => void reached.push(true)], ex, onRejected);
    expect(reached).toEqual([true]);
    expect(sink.rejected).toEqual([]);
  });

  it('fail/a request at or after the notAfter of the SVID the connection was opened with is refused', () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    const reached: boolean[] = [];
    runStages([peerUnexpired(() => peer.notAfterMs), () => void reached.push(true)], ex, onRejected);
    expect(reached).toEqual([]);
    expect(sink.rejected).toEqual([{ code: 'MESHAUTH_ERR_SVID_EXPIRED' }]);
  });
});

describe('authorize stage over the real policy authorizer', () => {
  const text = stringify({
    apiVersion: 'meshauth.dev/v1',
    kind: 'Policy',
    exposeRuleNames: true,
    rules: [
      { name: 'no-evil', action: 'deny', when: { headers: { 'user-agent': ['evil'] } } },
      { name: 'no-delete', action: 'deny', to: { methods: ['DELETE'], paths: ['/orders/*'] } },
      { name: 'frontend', action: 'allow', from: { ids: [PEER_ID] }, to: { paths: ['/orders/*'] } },
    ],
  });
  const policy = compilePolicy(parsePolicy(text, 'test.yaml'));
  const authorize = policyAuthorizer({ policy: () => policy, logger: silentLogger(), now: () => new Date(0) });

  it('ok/allowed: the verdict carries the normalized target the app receives', () => {
    const metrics = new Metrics();
    const { ex, sink } = exchange(['Host', 'orders', 'User-Agent', 'good'], '/orders/./1');
    runStages([authorizeWith(authorize, metrics)], ex, onRejected);
    expect(sink.rejected).toEqual([]);
    expect(ex.verdict?.forwardTarget).toBe('/orders/1');
  });

  it('fail/the second line of a repeated header is judged too; the rule name is exposed as configured', () => {
    const { ex, sink } = exchange(['Host', 'orders', 'User-Agent', 'good', 'User-Agent', 'evil']);
    runStages([authorizeWith(authorize, new Metrics())], ex, onRejected);
    expect(sink.rejected).toEqual([{ code: 'MESHAUTH_ERR_FORBIDDEN', body: { rule: 'no-evil' } }]);
  });

  it('fail/an ambiguous path is a deny with its one audit line, like a policy deny', () => {
    const log = logLines('sidecar');
    const audited = policyAuthorizer({ policy: () => policy, logger: log.logger, now: () => new Date(0) });
    const metrics = new Metrics();
    const { ex, sink } = exchange(['Host', 'orders'], '/orders/a%2fb');
    runStages([authorizeWith(audited, metrics)], ex, onRejected);
    expect(sink.rejected[0]?.code).toBe('MESHAUTH_ERR_PATH_AMBIGUOUS');
    expect(log.find({ event: 'authz_deny' })).toEqual([
      expect.objectContaining({
        peerId: PEER_ID,
        method: 'GET',
        path: '/orders/a%2fb',
        rule: 'path-normalization',
        mode: 'enforce',
        enforced: true,
      }),
    ]);
  });

  it('fail/a POST with ?_method=DELETE meets the DELETE deny (method-override), and its audit line says DELETE', () => {
    const log = logLines('sidecar');
    const audited = policyAuthorizer({ policy: () => policy, logger: log.logger, now: () => new Date(0) });
    const { ex, sink } = exchange(['Host', 'orders'], '/orders/1?_method=DELETE', 'POST');
    runStages([authorizeWith(audited, new Metrics())], ex, onRejected);
    expect(sink.rejected).toEqual([{ code: 'MESHAUTH_ERR_FORBIDDEN', body: { rule: 'no-delete' } }]);
    expect(log.find({ event: 'authz_deny' })).toEqual([
      expect.objectContaining({ method: 'DELETE', path: '/orders/1', rule: 'no-delete' }),
    ]);
    const plain = exchange(['Host', 'orders'], '/orders/1?x=DELETE', 'POST');
    runStages([authorizeWith(audited, new Metrics())], plain.ex, onRejected);
    expect(plain.sink.rejected).toEqual([]);
    expect(plain.ex.verdict?.forwardTarget).toBe('/orders/1?x=DELETE');
  });

  it('fail/an authorizer that throws is a deny with the error code', () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    const throwing = () => {
      throw new MeshauthError('MESHAUTH_ERR_PATH_AMBIGUOUS', 'bad');
    };
    runStages([authorizeWith(throwing, new Metrics())], ex, onRejected);
    expect(sink.rejected[0]?.code).toBe('MESHAUTH_ERR_PATH_AMBIGUOUS');
  });
});

describe('authenticate stage', () => {
  const run = (ex: Exchange, stage: Stage) =>
    new Promise<void>((resolve) => {
      runStages([stage, () => resolve()], ex, (e, error) => {
        onRejected(e, error);
        resolve();
      });
    });

  it('fail/a rejection answers with its headers (www-authenticate)', async () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    const hook = async () => ({
      reject: new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'none'),
      rejectHeaders: { 'www-authenticate': 'Bearer' },
    });
    await run(ex, authenticateWith(hook, { failure: 'x', requireUser: false, unanswered: () => {} }));
    expect(sink.rejected).toEqual([{ code: 'MESHAUTH_ERR_TOKEN_MISSING', headers: { 'www-authenticate': 'Bearer' } }]);
  });

  it('fail/a hook that throws a plain error is a 401 token error', async () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    await run(
      ex,
      authenticateWith(
        async () => {
          throw new Error('boom');
        },
        { failure: 'end-user authentication failed', requireUser: false, unanswered: () => {} },
      ),
    );
    expect(sink.rejected[0]?.code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
  });

  it('fail/requireUser: an outcome without a verified user is refused (fail closed)', async () => {
    const { ex, sink } = exchange(['Host', 'orders']);
    await run(
      ex,
      authenticateWith(async () => ({}), { failure: 'x', requireUser: true, unanswered: () => {} }),
    );
    expect(sink.rejected[0]?.code).toBe('MESHAUTH_ERR_TOKEN_MISSING');
  });
});

describe('identity headers stage: strip, then set', () => {
  it('ok/received identity headers of any case are dropped; XFCC and the verified headers are set once', () => {
    const { ex } = exchange([
      'Host',
      'orders',
      'X-Forwarded-Client-Cert',
      'spoofed',
      'X-MeshAuth-User',
      'spoofed',
      'Authorization',
      'Bearer t',
      'Content-Length',
      '3',
    ]);
    ex.outcome = { headers: { 'X-MeshAuth-User': 'verified' }, dropAuthorization: true };
    const stripped: Exchange[] = [];
    identityHeaders((e) => stripped.push(e))(ex);
    expect(stripped).toEqual([ex]);
    const out = ex.appHeaders ?? [];
    const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'x-forwarded-client-cert')).toHaveLength(1);
    expect(names.filter((n) => n === 'x-meshauth-user')).toHaveLength(1);
    expect(names).not.toContain('authorization');
    expect(out[out.indexOf('x-forwarded-client-cert') + 1]).toBe(peer.xfcc);
    expect(out[out.indexOf('x-meshauth-user') + 1]).toBe('verified');
    expect(ex.appHasBody).toBe(true);
  });

  it('ok/a request without identity headers, or with only a passport (a peer sidecar sends one), is not reported', () => {
    const stripped: Exchange[] = [];
    const stage = identityHeaders((e) => stripped.push(e));
    stage(exchange(['Host', 'orders', 'Accept', '*/*']).ex);
    const withPassport = exchange(['Host', 'orders', 'X-Meshauth-Passport', 'a.b.c']).ex;
    stage(withPassport);
    expect(stripped).toEqual([]);
    expect(withPassport.appHeaders?.map((n) => n.toLowerCase())).not.toContain('x-meshauth-passport');
    expect(withPassport.appHasBody).toBe(false);
  });
});
