// A request body that stops arriving on the mTLS inbound's HTTP/1.1 (a peer that sent a head with Content-Length and
// part of the body, then nothing), cut at the stream idle timeout. As on h2 (inbound-h2-body-stalled), with no
// response head out yet it is the peer's request that timed out: 408 MESHAUTH_ERR_REQUEST_TIMEOUT, reason
// body_stalled, with `Connection: close`, counted and logged as a rejection, then the connection closes; the app,
// if the request reached it, sees a cut body. Before, the socket was destroyed and only stream_idle_timeout counted.
// While the sidecar is not reading the body the connection is still cut and counted stream_idle_timeout (as once a
// response head went out: H1Sink.idle leaves that path as it was).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eventually, type RawApp } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { type HeldStage, startHeldStage, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

describe('inbound HTTP/1.1: a request body that stalls is answered 408 before a response head, cut after', () => {
  let ca: TestCa;
  let app: RawApp;
  let b: TestSidecar;
  let peer: TestSvid;
  const log = logLines('b');
  /** Requests on these paths wait in the end-user stage until the test releases them. */
  const held = new Map<string, () => void>();

  let stage: HeldStage;

  beforeAll(async () => {
    // The app never answers: it waits for bodies that never end. An idle exchange is cut after 1.2 s.
    stage = await startHeldStage(log.logger, held);
    ({ ca, peer, app, b } = stage);
  });
  afterAll(async () => {
    await stage?.close();
  });

  /** A POST announcing twice `body` (at least 1,000 bytes) that sends `body`, then nothing; the reply until close. */
  function stalledPost(path: string, body = 'a'): Promise<string> {
    const length = Math.max(1_000, 2 * body.length);
    return rawTlsExchange(
      b.sidecar.inboundPort,
      peer,
      ca.bundlePem,
      `POST ${path} HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: ${length}\r\n\r\n${body}`,
    );
  }

  const rejected = () => stage.rejected();
  const idleResets = () => stage.idleResets();

  /** One complete 408 with the JSON error and `Connection: close` (the reply was read until the sidecar closed). */
  function expect408(reply: string): void {
    const [head = '', body = ''] = reply.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(lines.map((l) => l.toLowerCase())).toContain('connection: close');
    expect(JSON.parse(body)).toMatchObject({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' });
  }

  it('fail/a body that stalls while a stage holds the request is answered 408 body_stalled and the connection closed; the app never sees it', async () => {
    expect408(await stalledPost('/held/stage'));
    held.get('/held/stage')?.();
    // Another request through the same stage list, after the held one's continuation (a microtask) ran.
    expect408(await stalledPost('/held/after'));
    held.get('/held/after')?.();
    expect(app.connections.map((c) => c.received)).not.toContainEqual(expect.stringContaining('/held/'));
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 2]]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toMatchObject([
      { direction: 'inbound', status: 408, reason: 'body_stalled', peer: peer.svid.id.toString() },
      { direction: 'inbound', status: 408, reason: 'body_stalled', peer: peer.svid.id.toString() },
    ]);
    expect(await idleResets()).toBe(0);
  });

  it('fail/a body that stalls after the app hop began is answered 408 body_stalled; the app connection is cut with 1 of 1,000 bytes', async () => {
    const reply = stalledPost('/to-app');
    // The request as the app received it (its connection may have served another request before).
    const atApp = () => {
      const connection = app.connections.find((c) => c.received.includes('POST /to-app '));
      return connection && { closed: connection.closed, text: connection.received.split('POST /to-app ')[1] ?? '' };
    };
    expect(await eventually(() => atApp()?.text.endsWith('\r\n\r\na') === true), 'head and 1 byte at the app').toBe(
      true,
    );
    expect408(await reply);
    expect(await eventually(() => atApp()?.closed === true), 'the app connection closed').toBe(true);
    expect(atApp()?.text.split('\r\n\r\n')[1], 'never more of the body than arrived').toBe('a');
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 3]]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT', reason: 'body_stalled' })).toHaveLength(3);
    expect(await idleResets()).toBe(0);
  });

  it('fail/a body that waits on the sidecar (reading paused while a stage holds it) is cut, not blamed on the peer with a 408', async () => {
    try {
      // Far above what node:http buffers for a request nobody reads before it stops reading the socket.
      // The connection is cut with bytes unread (a TCP reset may end it): no answer either way.
      expect(await stalledPost('/held/paused', 'a'.repeat(1_000_000)).catch(() => '')).toBe('');
    } finally {
      held.get('/held/paused')?.();
    }
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 3]]);
    expect(await idleResets()).toBe(1);
  });
});
