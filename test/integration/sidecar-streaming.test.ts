// Bodies stream through both sidecars with backpressure, never buffered whole, so a proxied body costs a sidecar only
// its buffers: a 100 MiB upload keeps memory growth far below 100 MiB, and a slow chunked response reaches the caller
// chunk by chunk (the app only writes its second chunk after the caller has received the first).
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const MiB = 1024 * 1024;

describe('streaming through the pair', () => {
  let pair: SidecarPair;
  let firstChunkSeen: () => void = () => undefined;
  let firstChunk = new Promise<void>((resolve) => {
    firstChunkSeen = resolve;
  });

  beforeAll(async () => {
    pair = await startPair(await TestCa.create(), {
      appHandler: (req, res, seen) => {
        if (req.url === '/slow') {
          res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: no content-length
          res.write('first;');
          // The rest is written only once the caller has the first chunk: a buffering proxy would deadlock here.
          void firstChunk.then(() => {
            res.write('second;');
            setTimeout(() => res.end('last'), 20);
          });
          return;
        }
        res.end(JSON.stringify({ bytes: seen.bodyBytes }));
      },
    });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('ok/100 MiB upload streamed through both sidecars with bounded memory', async () => {
    const total = 100 * MiB;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    global.gc?.();
    // A buffered body would hold all 100 MiB in Buffers (arrayBuffers) at once. Chunks already sent are garbage that
    // V8 frees in batches (Node 24 lets about 64 MiB of it accumulate, and grows its young generation to 64 MiB), so
    // the bounds sit between that and a whole body.
    const held = (m: NodeJS.MemoryUsage) => m.arrayBuffers;
    const before = process.memoryUsage();
    let rssPeak = before.rss;
    let heldPeak = held(before);
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      rssPeak = Math.max(rssPeak, now.rss);
      heldPeak = Math.max(heldPeak, held(now));
    }, 20);
    try {
      const body = new Readable({
        read() {
          if (sent >= total) {
            this.push(null);
            return;
          }
          sent += chunk.length;
          this.push(chunk);
        },
      });
      const reply = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: pair.a.sidecar.outboundPort,
            method: 'POST',
            path: 'http://b.mesh/upload',
            headers: { host: 'b.mesh', 'content-type': 'application/octet-stream' },
            agent: false,
          },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => {
              text += d.toString();
            });
            res.on('end', () => resolve(`${res.statusCode} ${text}`));
          },
        );
        req.on('error', reject);
        body.pipe(req);
      });
      expect(reply).toBe(`200 ${JSON.stringify({ bytes: total })}`);
    } finally {
      clearInterval(sampler);
    }
    // Client, both sidecars and the app share this process; buffering the body anywhere would add ≥ 100 MiB.
    expect((heldPeak - held(before)) / MiB).toBeLessThan(90);
    expect((rssPeak - before.rss) / MiB).toBeLessThan(100);
  }, 60_000);

  it('ok/slow chunked response arrives chunk by chunk', async () => {
    const chunks = await new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: pair.a.sidecar.outboundPort,
          path: 'http://b.mesh/slow',
          headers: { host: 'b.mesh' },
          agent: false,
        },
        (res) => {
          res.on('data', (d: Buffer) => {
            got.push(d.toString());
            if (got.length === 1) firstChunkSeen();
          });
          res.on('end', () => resolve(got));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(chunks[0]).toBe('first;');
    expect(chunks.join('')).toBe('first;second;last');
    firstChunk = Promise.resolve();
  });
});
