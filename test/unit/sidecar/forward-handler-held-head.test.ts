// ForwardHandler with holdHead (the outbound's HTTP/1.1 path to a peer): the peer's head is written with its first
// body byte or its end, never before; an answer that fails in between is answered and counted as the error it is and
// never retried (the peer answered it); a caller that leaves meanwhile is counted with the peer's status, as a head
// written is; a head node:http refuses to send is a malformed answer (502).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { DataPlaneTelemetry } from '../../../src/sidecar/data-plane-telemetry.js';
import { ForwardHandler, type ForwardHooks } from '../../../src/sidecar/forward-handler.js';
import { Metrics, silentLogger } from '../../../src/telemetry/index.js';

/** What a ServerResponse does that the handler uses, recorded. */
class FakeResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  readonly req = { complete: true, headers: {} };
  readonly calls: Array<[string, ...unknown[]]> = [];
  refuseHead = false;
  writeHead(status: number, headers: unknown): this {
    if (this.refuseHead) {
      this.refuseHead = false; // the next head (the sidecar's error answer) goes through
      throw Object.assign(new TypeError('Invalid character in header content'), { code: 'ERR_INVALID_CHAR' });
    }
    this.calls.push(['writeHead', status, headers]);
    this.headersSent = true;
    return this;
  }
  write(chunk: Buffer): boolean {
    this.calls.push(['write', chunk.toString()]);
    return true;
  }
  end(body?: string): this {
    this.calls.push(['end', body]);
    this.writableEnded = true;
    return this;
  }
  destroy(): this {
    this.calls.push(['destroy']);
    this.destroyed = true;
    this.emit('close');
    return this;
  }
}

function classify(error: Error): MeshauthError {
  const code = (error as Error & { code?: string }).code ?? '';
  return code.startsWith('HPE_')
    ? new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'peer sent an invalid response', { reason: 'response_head' })
    : new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', 'peer sidecar unavailable', { reason: 'connect' });
}

function handlerFor(hooks: ForwardHooks = {}) {
  const metrics = new Metrics();
  const telemetry = new DataPlaneTelemetry('outbound', metrics, silentLogger());
  const res = new FakeResponse();
  const retried: Error[] = [];
  const aborted: (Error | undefined)[] = [];
  const handler = new ForwardHandler(
    res as unknown as ServerResponse,
    false,
    'spiffe://example.org/ns/b/sa/b',
    0,
    telemetry,
    classify,
    { draining: false },
    {
      holdHead: true,
      retry: (error) => {
        retried.push(error);
        return true;
      },
      ...hooks,
    },
  );
  handler.onConnect((error) => aborted.push(error));
  const counted = async (code: string) =>
    (await metrics.requests.get()).values.filter((v) => v.labels.code === code).reduce((n, v) => n + v.value, 0);
  const resets = async (reason: string) =>
    (await metrics.streamsReset.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { handler, res, retried, aborted, counted, resets };
}

const HEAD = ['content-type', 'text/plain', 'content-length', '5'] as unknown as Buffer[];
const resume = () => undefined;
const closed = () => Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });

describe('ForwardHandler holdHead', () => {
  it('ok/the head goes out with the first body byte, and is counted then', async () => {
    const { handler, res, counted } = handlerFor();
    handler.onHeaders(200, HEAD, resume);
    expect(res.calls).toEqual([]);
    expect(await counted('200')).toBe(0);
    handler.onData(Buffer.from('hello'));
    handler.onComplete();
    expect(res.calls.map(([call]) => call)).toEqual(['writeHead', 'write', 'end']);
    expect(await counted('200')).toBe(1);
  });

  it('ok/a bodiless answer (204) is written at its head', async () => {
    const { handler, res, counted } = handlerFor();
    handler.onHeaders(204, [] as unknown as Buffer[], resume);
    expect(res.calls.map(([call]) => call)).toEqual(['writeHead', 'end']);
    expect(await counted('204')).toBe(1);
  });

  it('fail/the connection closes after the head → 502 response_cut, never retried, counted as 502 alone', async () => {
    const { handler, res, retried, counted, resets } = handlerFor();
    handler.onHeaders(200, HEAD, resume);
    handler.onError(closed());
    expect(retried).toEqual([]);
    const [[call, status], [, body]] = res.calls as [[string, number], [string, string]];
    expect([call, status]).toEqual(['writeHead', 502]);
    expect(JSON.parse(body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    expect([await counted('200'), await counted('502'), await resets('peer_response_truncated')]).toEqual([0, 1, 0]);
  });

  it('fail/the body timeout after the head → 504', async () => {
    const { handler, res, counted } = handlerFor();
    handler.onHeaders(200, HEAD, resume);
    handler.onError(Object.assign(new Error('Body Timeout Error'), { code: 'UND_ERR_BODY_TIMEOUT' }));
    expect(res.calls[0]?.[1]).toBe(504);
    expect(await counted('504')).toBe(1);
  });

  it("fail/the caller leaves while the head is held → counted with the peer's status and as client_aborted", async () => {
    const { handler, res, aborted, counted, resets } = handlerFor();
    handler.onHeaders(200, HEAD, resume);
    res.destroy();
    expect(aborted).toHaveLength(1); // the peer's connection goes
    handler.onError(new Error('downstream closed')); // what the abort reports back
    expect(res.calls).toEqual([['destroy']]);
    expect([await counted('200'), await resets('client_aborted')]).toEqual([1, 1]);
  });

  it('fail/a held head node:http refuses to send → 502 as a malformed answer, the connection aborted', async () => {
    const { handler, res, aborted, counted } = handlerFor({ retry: () => false });
    res.refuseHead = true;
    handler.onHeaders(200, HEAD, resume);
    expect(handler.onData(Buffer.from('hello'))).toBe(false);
    expect(res.calls[0]?.[1]).toBe(502);
    expect(res.calls.some(([call, chunk]) => call === 'write' && chunk === 'hello')).toBe(false);
    expect(aborted.map((e) => (e as Error & { code?: string }).code)).toEqual(['HPE_INVALID_HEADER_TOKEN']);
    expect([await counted('200'), await counted('502')]).toEqual([0, 1]);
  });

  it('ok/without holdHead the head is written when it arrives (the inbound, the gateway)', () => {
    const { handler, res } = handlerFor({ holdHead: false });
    handler.onHeaders(200, HEAD, resume);
    expect(res.calls.map(([call]) => call)).toEqual(['writeHead']);
  });
});
