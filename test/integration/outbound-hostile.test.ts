// The outbound side of the outside security test, reproduced on real sockets: a response the peer cuts is never
// delivered as complete (h2 RST_STREAM with any code before END_STREAM, or an HTTP/1.1 peer connection that dies
// mid-body: curl exits 18); an upload the app aborts or breaks never reaches the peer as complete (the raw h2 peer
// sees RST_STREAM, never END_STREAM); identity headers in a peer's h2 response are stripped; ambiguous request
// heads (two Host headers, repeated single-value headers, userinfo in the host) are 400; CONNECT egress is limited
// to the listed ports and never reaches this machine.

import { lookup } from 'node:dns/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, connect as netConnect, type Server as TcpServer } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/index.js';
import { type RawH2Peer, type RawPeerScript, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import {
  available,
  runCommand,
  startTestSidecar,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/wait.js';

const CANCEL = 0x8;
const INTERNAL_ERROR = 0x2;
const NO_ERROR = 0x0;
const HAS_CURL = available('curl');

interface LogLine {
  readonly msg: string;
  readonly [key: string]: unknown;
}

describe('outbound: hostile peers and hostile app requests', () => {
  let ca: TestCa;
  let peer: RawH2Peer;
  let h1Peer: HttpsServer;
  let h1Seen: { complete: boolean; bytes: number }[];
  let egressTarget: TcpServer;
  let egressPort = 0;
  let a: TestSidecar;
  const logs: LogLine[] = [];
  let script: RawPeerScript['onStream'] = () => undefined;
  const peerId = 'spiffe://example.org/ns/b/sa/b';

  beforeAll(async () => {
    ca = await TestCa.create();
    const svid = await ca.issue({ id: peerId });
    peer = await startRawH2Peer(svid, ca.bundlePem, { onStream: (stream) => script(stream) });
    h1Seen = [];
    h1Peer = createHttpsServer(
      {
        cert: svid.chainPem,
        key: svid.keyPem,
        ca: ca.bundlePem,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['http/1.1'],
      },
      (req, res) => {
        const seen = { complete: false, bytes: 0 };
        h1Seen.push(seen);
        req.on('data', (d: Buffer) => {
          seen.bytes += d.length;
        });
        req.on('end', () => {
          seen.complete = true;
        });
        req.on('error', () => undefined);
        if (req.url === '/cut') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('partial');
          setTimeout(() => res.socket?.destroy(), 30);
        } else if (req.url === '/upload') {
          req.on('end', () => res.end('got it'));
        } else {
          res.end('ok');
        }
      },
    );
    await new Promise<void>((resolve) => h1Peer.listen(0, '127.0.0.1', resolve));
    egressTarget = createTcpServer((socket) => socket.end('egress-target\n'));
    await new Promise<void>((resolve) => egressTarget.listen(0, '0.0.0.0', resolve));
    egressPort = (egressTarget.address() as { port: number }).port;
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => logs.push(JSON.parse(line)) },
    });
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({
        appPort: 1,
        routes: {
          'b.mesh': { address: `127.0.0.1:${peer.port}`, ids: [peerId] },
          'h1.mesh': { address: `127.0.0.1:${(h1Peer.address() as { port: number }).port}`, ids: [peerId] },
        },
        egress: ['api.example.test', `${hostname().toLowerCase()}:${egressPort}`],
      }),
      { logger },
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
    h1Peer?.close();
    egressTarget?.close();
  });

  async function rejected(code: string): Promise<number> {
    const { values } = await a.metrics.requestsRejected.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.code === code)?.value ?? 0;
  }

  async function suppressedRejections(): Promise<number> {
    const { values } = await a.metrics.logLinesSuppressed.get();
    return values.find((v) => v.labels.event === 'request_rejected')?.value ?? 0;
  }

  /**
   * The refusal's log line was written, or held back by the per-code window (more than 10 refusals of one code in
   * 10 s, as this file's many 400s are): one of the two happened for it.
   */
  async function refusalLogged(before: number, suppressedBefore: number, line: (l: LogLine) => boolean) {
    return logs.slice(before).some(line) || (await suppressedRejections()) > suppressedBefore;
  }

  async function completed(status: string): Promise<number> {
    const { values } = await a.metrics.requests.get();
    return values
      .filter((v) => v.labels.direction === 'outbound' && v.labels.code === status)
      .reduce((s, v) => s + v.value, 0);
  }

  /** Raw bytes to the outbound listener; resolves with everything read until the connection closes. */
  function rawToOutbound(bytes: string, closeAfterWrite = false): Promise<string> {
    return new Promise((resolve, reject) => {
      let text = '';
      const socket = netConnect(a.sidecar.outboundPort, '127.0.0.1', () => {
        socket.write(bytes);
        if (closeAfterWrite) setTimeout(() => socket.destroy(), 100);
      });
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', (e) => (text === '' && !closeAfterWrite ? reject(e) : resolve(text)));
      socket.setTimeout(5_000, () => socket.destroy());
    });
  }

  describe.skipIf(!HAS_CURL)('truncated responses', () => {
    it.each([
      ['RST_STREAM(CANCEL)', CANCEL],
      ['RST_STREAM(INTERNAL_ERROR)', INTERNAL_ERROR],
      ['RST_STREAM(NO_ERROR) without END_STREAM', NO_ERROR],
    ])('fail/the h2 peer cuts the body with %s → curl exit 18, never a clean end', async (_name, code) => {
      script = (stream: RawStream) => {
        stream.respond(200, { 'content-type': 'text/plain' });
        stream.data('partial');
        setTimeout(() => stream.reset(code), 30);
      };
      const before = logs.length;
      const ok = await completed('200');
      const result = await runCommand('curl', [
        '-sS',
        '--noproxy',
        '',
        '-x',
        `http://127.0.0.1:${a.sidecar.outboundPort}`,
        'http://b.mesh/cut',
      ]);
      expect(result.code).toBe(18);
      expect(result.stdout).toBe('partial');
      expect(await completed('200')).toBe(ok + 1); // the head went out as 200; the body was cut
      expect(
        logs.slice(before).some((l) => l.msg === 'peer reset the stream mid-response; response to the app aborted'),
      ).toBe(true);
    });

    it('fail/an HTTP/1.0 app client (close-delimited response) sees the cut as a reset, never a clean end', async () => {
      script = (stream: RawStream) => {
        stream.respond(200, { 'content-type': 'text/plain' });
        stream.data('partial');
        setTimeout(() => stream.reset(NO_ERROR), 30);
      };
      const result = await runCommand('curl', [
        '-sS',
        '--http1.0',
        '--noproxy',
        '',
        '-x',
        `http://127.0.0.1:${a.sidecar.outboundPort}`,
        'http://b.mesh/cut-1.0',
      ]);
      expect(result.stdout).toBe('partial');
      expect(result.code).toBe(56); // "Failure when receiving data from the peer": the connection was reset
    });

    it('ok/the same peer ending with END_STREAM → curl exit 0', async () => {
      script = (stream: RawStream) => {
        stream.respond(200, { 'content-type': 'text/plain' });
        stream.data('partial');
        setTimeout(() => stream.data(' and the rest', true), 30);
      };
      const result = await runCommand('curl', [
        '-sS',
        '--noproxy',
        '',
        '-x',
        `http://127.0.0.1:${a.sidecar.outboundPort}`,
        'http://b.mesh/whole',
      ]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('partial and the rest');
    });

    it('fail/an HTTP/1.1 peer whose connection dies mid-body → curl exit 18', async () => {
      const result = await runCommand('curl', [
        '-sS',
        '--noproxy',
        '',
        '-x',
        `http://127.0.0.1:${a.sidecar.outboundPort}`,
        'http://h1.mesh/cut',
      ]);
      expect(result.code).toBe(18);
      expect(result.stdout).toBe('partial');
    });
  });

  describe('truncated requests', () => {
    const head = (host: string, path: string) =>
      `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n`;

    it('fail/the app closes before the last chunk → the h2 peer gets RST_STREAM(INTERNAL_ERROR), never END_STREAM', async () => {
      let seen: RawStream | undefined;
      script = (stream: RawStream) => {
        seen = stream; // never answers: the request is still uploading
      };
      const rejectedBefore = await rejected('MESHAUTH_ERR_BAD_REQUEST');
      const suppressedBefore = await suppressedRejections();
      const before = logs.length;
      await rawToOutbound(`${head('b.mesh', '/pay')}9\r\namount=10\r\n`, true);
      await until('the peer to see the reset', () => seen?.resetCode !== undefined);
      expect(seen?.endStreamSeen).toBe(false);
      expect(seen?.resetCode).toBe(INTERNAL_ERROR);
      expect(seen?.bodyBytes).toBe(9);
      expect(await rejected('MESHAUTH_ERR_BAD_REQUEST')).toBe(rejectedBefore + 1);
      expect(
        await refusalLogged(before, suppressedBefore, (l) => l.msg === 'request rejected: request body incomplete'),
      ).toBe(true);
    });

    it('fail/a bad chunk mid-body → the app gets 400 and the h2 peer RST_STREAM, never END_STREAM', async () => {
      let seen: RawStream | undefined;
      script = (stream: RawStream) => {
        seen = stream;
      };
      const reply = await rawToOutbound(`${head('b.mesh', '/pay')}9\r\namount=10\r\nzz\r\nmore\r\n0\r\n\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('MESHAUTH_ERR_BAD_REQUEST');
      await until('the peer to see the reset', () => seen?.resetCode !== undefined);
      expect(seen?.endStreamSeen).toBe(false);
      expect(seen?.resetCode).toBe(INTERNAL_ERROR);
    });

    it('ok/a complete chunked upload reaches the h2 peer with END_STREAM', async () => {
      let seen: RawStream | undefined;
      script = (stream: RawStream) => {
        seen = stream;
      };
      const done = rawToOutbound(`${head('b.mesh', '/pay')}9\r\namount=10\r\n0\r\n\r\n`, true);
      await until('END_STREAM at the peer', () => seen?.endStreamSeen === true);
      seen?.respond(200, {}, true);
      await done;
      expect(seen?.bodyBytes).toBe(9);
      expect(seen?.resetCode).toBeUndefined();
    });

    it('fail/the app closes before the last chunk on the HTTP/1.1 path → the peer never sees a complete body', async () => {
      const count = h1Seen.length;
      await rawToOutbound(`${head('h1.mesh', '/upload')}9\r\namount=10\r\n`, true);
      await until('the HTTP/1.1 peer to get the request', () => h1Seen.length > count);
      // A fixed grace period for the negative: a body wrongly completed would arrive about as fast as the cut.
      await new Promise((r) => setTimeout(r, 300));
      expect(h1Seen[count]?.complete).toBe(false);
    });
  });

  it('ok/identity headers in a peer h2 response are stripped before the app sees them', async () => {
    script = (stream: RawStream) => {
      stream.respond(200, {
        'x-meshauth-user': 'admin',
        'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://evil',
        'x-meshauth-passport': 'forged',
        'x-app': 'kept',
      });
      stream.data('body', true);
    };
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/identity');
    expect(res.status).toBe(200);
    expect(res.headers['x-app']).toBe('kept');
    expect(res.headers['x-meshauth-user']).toBeUndefined();
    expect(res.headers['x-forwarded-client-cert']).toBeUndefined();
    expect(res.headers['x-meshauth-passport']).toBeUndefined();
  });

  describe('ambiguous request heads → 400', () => {
    it.each([
      [
        'two Host headers (origin form)',
        'GET /x HTTP/1.1\r\nHost: b.mesh\r\nHost: internal.mesh\r\n\r\n',
        'duplicate_host',
      ],
      [
        'duplicate user-agent',
        'GET /x HTTP/1.1\r\nHost: b.mesh\r\nUser-Agent: good\r\nUser-Agent: evil\r\n\r\n',
        'duplicate_header',
      ],
      [
        'duplicate content-type',
        'POST /x HTTP/1.1\r\nHost: b.mesh\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n',
        'duplicate_header',
      ],
      ['userinfo in Host', 'GET /x HTTP/1.1\r\nHost: b.mesh:@internal.mesh\r\n\r\n', 'bad_host'],
      [
        'userinfo in the proxy-form target',
        'GET http://b.mesh:@internal.mesh/x HTTP/1.1\r\nHost: b.mesh\r\n\r\n',
        'bad_host',
      ],
      ['user@host in the proxy-form target', 'GET http://user@b.mesh/x HTTP/1.1\r\nHost: b.mesh\r\n\r\n', 'bad_host'],
      // The peer gets the body de-chunked without Transfer-Encoding: the gzip coding would be lost on the way.
      [
        'a coding before chunked',
        'POST /x HTTP/1.1\r\nHost: b.mesh\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'transfer_encoding',
      ],
      [
        'a coding and chunked on two lines',
        'POST /x HTTP/1.1\r\nHost: b.mesh\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'transfer_encoding',
      ],
    ])('fail/%s', async (_name, bytes, reason) => {
      script = (stream: RawStream) => {
        stream.respond(200, {}, true);
      };
      const streamsBefore = peer.streams.length;
      const rejectedBefore = await rejected('MESHAUTH_ERR_BAD_REQUEST');
      const suppressedBefore = await suppressedRejections();
      const before = logs.length;
      const reply = await rawToOutbound(bytes);
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('"code":"MESHAUTH_ERR_BAD_REQUEST"');
      expect(peer.streams.length).toBe(streamsBefore); // nothing reached the peer
      expect(await rejected('MESHAUTH_ERR_BAD_REQUEST')).toBe(rejectedBefore + 1);
      expect(
        await refusalLogged(
          before,
          suppressedBefore,
          (l) => l.msg.startsWith('request rejected:') && l.reason === reason,
        ),
      ).toBe(true);
    });

    // Node's parser refuses these heads before the outbound sees a request: the refusal is the inbound's for them.
    it.each([['FOO'], ['get']])('fail/method %s from the app → 400 MESHAUTH_ERR_METHOD_INVALID', async (method) => {
      const streamsBefore = peer.streams.length;
      const rejectedBefore = await rejected('MESHAUTH_ERR_METHOD_INVALID');
      const before = logs.length;
      const reply = await rawToOutbound(`${method} /x HTTP/1.1\r\nHost: b.mesh\r\n\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('"code":"MESHAUTH_ERR_METHOD_INVALID"');
      expect(peer.streams.length).toBe(streamsBefore);
      expect(await rejected('MESHAUTH_ERR_METHOD_INVALID')).toBe(rejectedBefore + 1);
      expect(
        logs.slice(before).filter((l) => l.msg.startsWith('request rejected:') && l.reason === 'method').length,
      ).toBe(1);
    });

    it('ok/repeated list headers (accept) are forwarded', async () => {
      script = (stream: RawStream) => {
        stream.respond(200, {}, true);
      };
      const reply = await rawToOutbound(
        'GET /x HTTP/1.1\r\nHost: b.mesh\r\nAccept: a/b\r\nAccept: c/d\r\nConnection: close\r\n\r\n',
      );
      expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    });
  });

  describe('CONNECT egress', () => {
    it('fail/a port the egress entry does not list → 403 egress_forbidden', async () => {
      const before = logs.length;
      const forbidden = await rejected('MESHAUTH_ERR_EGRESS_FORBIDDEN');
      const reply = await rawToOutbound('CONNECT api.example.test:22 HTTP/1.1\r\nHost: api.example.test:22\r\n\r\n');
      expect(reply).toMatch(/^HTTP\/1\.1 403 /);
      expect(await rejected('MESHAUTH_ERR_EGRESS_FORBIDDEN')).toBe(forbidden + 1);
      expect(logs.slice(before).some((l) => l.reason === 'egress_forbidden' && l.host === 'api.example.test')).toBe(
        true,
      );
    });

    it('fail/loopback literals are never egress targets → 403', async () => {
      for (const target of [`127.0.0.1:${egressPort}`, `localhost:${egressPort}`, `[::1]:${egressPort}`]) {
        const reply = await rawToOutbound(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
        expect(reply).toMatch(/^HTTP\/1\.1 403 /);
      }
    });

    it('fail/an allowed name that resolves to loopback → 403 egress_loopback', async (context) => {
      const name = hostname().toLowerCase();
      const addresses = await lookup(name, { all: true }).catch(() => []);
      if (!addresses.some((x) => x.address.startsWith('127.') || x.address === '::1')) {
        context.skip(); // this machine's name does not resolve to loopback here
        return;
      }
      const before = logs.length;
      const reply = await rawToOutbound(
        `CONNECT ${name}:${egressPort} HTTP/1.1\r\nHost: ${name}:${egressPort}\r\n\r\n`,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 403 /);
      expect(reply).not.toContain('egress-target');
      expect(logs.slice(before).some((l) => l.reason === 'egress_loopback')).toBe(true);
    });
  });
});
