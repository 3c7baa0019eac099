// Header names that are also Object.prototype's (`__proto__`, `constructor`) through the pair, both ways, on real
// sockets. Found in review: the outbound built the peer's header object as a plain object, so an app's
// `__proto__: x` request header replaced its prototype and the next loop threw outside any handler, which ended the
// sidecar; `constructor: mine` reached the peer's app as `function Object() { [native code] }, mine`. The inbound's
// and the gateway's header objects had the same shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { rawTcpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

describe('header names of Object.prototype', () => {
  let pair: SidecarPair;
  const unexpected: unknown[] = [];
  const onUnexpected = (error: unknown) => unexpected.push(error);

  beforeAll(async () => {
    process.on('uncaughtException', onUnexpected);
    process.on('unhandledRejection', onUnexpected);
    pair = await startPair(await TestCa.create(), {
      appHandler: (_req, res) => {
        res.setHeader('constructor', 'from-app');
        res.setHeader('__proto__', 'from-app');
        res.writeHead(200, { 'content-length': '2' }).end('ok');
      },
    });
  });
  afterAll(async () => {
    process.off('uncaughtException', onUnexpected);
    process.off('unhandledRejection', onUnexpected);
    await pair?.close();
  });

  const exchange = async (headerLines: string) => {
    const reply = await rawTcpExchange(
      pair.a.sidecar.outboundPort as number,
      Buffer.from(`GET http://b.mesh/x HTTP/1.1\r\nhost: b.mesh\r\n${headerLines}connection: close\r\n\r\n`),
    );
    return reply.bytes.toString('latin1');
  };

  it('fail/an app’s __proto__ request header is carried like any other name: answered, nothing thrown', async () => {
    for (let i = 0; i < 2; i++) {
      // The first request opens the session to B (the throw was an unhandled rejection), the second rides it (an
      // uncaught exception from node:http's request handler).
      expect((await exchange('__proto__: x\r\n')).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    }
    expect(unexpected).toEqual([]);
  });

  it('ok/constructor in a request and in a response carries exactly the value sent', async () => {
    const response = await exchange('constructor: mine\r\n');
    expect(response.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const seen = pair.appB.seen.at(-1)?.rawHeaders ?? [];
    const values = seen.filter((_, i) => i % 2 === 1 && seen[i - 1]?.toLowerCase() === 'constructor');
    expect(values).toEqual(['mine']);
    const lines = response.split('\r\n').filter((line) => /^constructor:/i.test(line));
    expect(lines).toEqual(['constructor: from-app']);
    expect(unexpected).toEqual([]);
  });
});
