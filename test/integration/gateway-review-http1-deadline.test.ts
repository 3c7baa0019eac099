// Outside review (2026-12-02), finding (d8172ab, Http1Deadline in public-listener.ts): the request deadline (300 s, "a
// request body") is cleared when the request's body ends only while it is the one request in flight. With a pipelined
// request (the second arrives while the first is answered) neither 'end' clears it and the first response's close does
// not re-arm it, so a second response that streams longer than 300 s is cut as request_timeout although its request was
// complete. The 300 s timer is driven with fake setTimeout (only Http1Deadline uses the global one on this path).
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PUBLIC_LIMITS } from '../../src/gateway/public-listener.js';
import { type BadMesh, gatewayH1Socket, startBadMesh } from '../helpers/gateway-bad-service.js';

const immediate = () => new Promise((resolve) => setImmediate(resolve));

describe('gateway (outside review): HTTP/1.1 deadlines at the public listener', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  /** Sends `requests` on one connection; resolves once `marker` arrived (the stalled download has started). */
  async function openDownload(requests: string): Promise<{ socket: TLSSocket; closed: () => boolean }> {
    const socket = gatewayH1Socket(m.port, m.mesh.files.caPem);
    let text = '';
    let closed = false;
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
    });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(requests);
    // The stalled response's first 100 bytes (chunked: "64\r\n" + 100 x). Waited for by the real clock
    // (performance.now is not faked), up to 20 s: a count of event-loop turns ran out on a loaded CI machine.
    const until = performance.now() + 20_000;
    while (performance.now() < until && !text.includes('x'.repeat(100)) && !closed) await immediate();
    expect(text.includes('x'.repeat(100))).toBe(true);
    return { socket, closed: () => closed };
  }

  const host = () => `Host: 127.0.0.1:${m.port}\r\n`;

  it.each([
    ['ok/one request', () => `GET /bad/stall-body/one HTTP/1.1\r\n${host()}\r\n`],
    [
      'fail/a pipelined second request',
      () => `GET /bad/echo HTTP/1.1\r\n${host()}\r\nGET /bad/stall-body/two HTTP/1.1\r\n${host()}\r\n`,
    ],
  ])('%s: a download still streaming after requestTimeout is not cut', async (_name, requests) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { socket, closed } = await openDownload(requests());
      vi.advanceTimersByTime(PUBLIC_LIMITS.requestTimeoutMs + 1);
      for (let i = 0; i < 50; i++) await immediate();
      const cut = closed() || socket.destroyed;
      socket.destroy();
      const timeouts = (await m.mesh.metrics.connectionsRejected.get()).values.filter(
        (v) => v.labels.direction === 'edge' && v.labels.reason === 'request_timeout',
      );
      expect({ cut, requestTimeouts: timeouts.reduce((n, v) => n + v.value, 0) }).toEqual({
        cut: false,
        requestTimeouts: 0,
      });
    } finally {
      vi.useRealTimers();
    }
  });
});
