// Responses without a body (HEAD, 204, 304, an empty 200, END_STREAM on the HEADERS frame) are complete responses:
// the truncation check must never cut them, and the app's keep-alive connection stays usable afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { available, runCommand, type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe.skipIf(!available('curl'))('outbound: bodiless responses are complete', () => {
  let ca: TestCa;
  let pair: SidecarPair;

  beforeAll(async () => {
    ca = await TestCa.create();
    pair = await startPair(ca, {
      appHandler: (req, res) => {
        if (req.url === '/204') res.writeHead(204).end();
        else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
        else if (req.url === '/empty') res.writeHead(200, { 'content-length': '0' }).end();
        else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
      },
    });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('ok/HEAD, 204, 304 and an empty 200 on one keep-alive connection, then a GET with a body', async () => {
    const proxy = `http://127.0.0.1:${pair.a.sidecar.outboundPort}`;
    // One curl process, several URLs: curl reuses its connection to the proxy when the previous response was
    // complete; a cut response would fail the transfer (exit 18) or force a new connection.
    const transfer = (url: string, ...extra: string[]) => [
      '-sS',
      '--noproxy',
      '',
      '-x',
      proxy,
      '-w',
      '%{http_code} %{num_connects}\\n',
      '-o',
      '/dev/null',
      ...extra,
      url,
    ];
    const result = await runCommand('curl', [
      ...transfer('http://b.mesh/head', '-I'),
      '--next',
      ...transfer('http://b.mesh/204'),
      '--next',
      ...transfer('http://b.mesh/304'),
      '--next',
      ...transfer('http://b.mesh/empty'),
      '--next',
      ...transfer('http://b.mesh/body'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['200', '204', '304', '200', '200']);
    // Only the first transfer opened a connection to the outbound listener.
    expect(lines.slice(1).every((l) => l.endsWith(' 0'))).toBe(true);
  });
});
