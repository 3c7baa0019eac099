// TLS 1.3 after the handshake on the inbound. Post-handshake client authentication: the client certificate is asked for
// in the handshake only — a client that offers post_handshake_auth (openssl s_client -enable_pha) sees exactly one
// CertificateRequest, before its Finished, and none later. A KeyUpdate flood (each asking the server to update too) on
// an established connection is closed by OpenSSL past 32 KeyUpdates in a row without application data, and harms
// nothing: the sidecar goes on serving.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  available,
  type InboundServer,
  runCommand,
  startInboundServer,
  type TestApp,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';

const HAVE_OPENSSL = available('openssl');
/** KeyUpdates in a row, none followed by application data. */
const FLOOD = 200;
if (!HAVE_OPENSSL) console.warn('inbound-tls13-post-handshake: openssl not on PATH, skipping');

describe('TLS 1.3 post-handshake messages on the inbound (T05)', () => {
  let app: TestApp;
  let sidecar: TestSidecar;
  let good: { cert: string; key: string };
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer();
    ({ app, sidecar, clientFiles: good } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  const certArgs = () => ['-cert', good.cert, '-cert_chain', good.cert, '-key', good.key];
  const request = 'GET /hello HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n';

  it.skipIf(!HAVE_OPENSSL)(
    'ok/a client offering post-handshake auth is asked for its certificate once, in the handshake',
    async () => {
      const seen = app.seen.length;
      const result = await runCommand(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${sidecar.sidecar.inboundPort}`,
          '-enable_pha',
          ...certArgs(),
          '-alpn',
          'http/1.1',
          '-msg',
          '-ign_eof',
        ],
        { input: request },
      );
      expect(result.stdout).toContain('HTTP/1.1 200');
      expect(app.seen.length).toBe(seen + 1);
      const received = result.stdout.split('\n').filter((l) => l.startsWith('<<<'));
      const requests = received.filter((l) => l.includes('CertificateRequest'));
      expect(requests).toHaveLength(1);
      // ...and it came before the server's Finished, i.e. in the handshake.
      const finished = received.findIndex((l) => l.includes(', Finished'));
      expect(received.indexOf(requests[0] as string)).toBeLessThan(finished);
    },
  );

  it.skipIf(!HAVE_OPENSSL)('fail/a KeyUpdate flood is closed or harmless; the sidecar still serves', async () => {
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${sidecar.sidecar.inboundPort}`,
        ...certArgs(),
        '-alpn',
        'http/1.1',
        '-brief',
        '-msg',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let exited = false;
    const changed = new Set<() => void>();
    const notify = () => {
      for (const f of changed) f();
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      notify();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      notify();
    });
    child.on('close', () => {
      exited = true;
      notify();
    });
    child.stdin.on('error', () => undefined);
    const until = (condition: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; s_client said: ${stderr.slice(-300)}`)), 5_000);
        const check = () => {
          if (!condition()) return;
          clearTimeout(timer);
          changed.delete(check);
          resolve();
        };
        changed.add(check);
        check();
      });
    // -msg: a KeyUpdate sent is a ">>> TLS 1.3, Handshake [...], KeyUpdate" line, one received a "<<<" one.
    const keyUpdates = (direction: '>>>' | '<<<') =>
      stdout.split('\n').filter((l) => l.startsWith(direction) && l.includes('KeyUpdate')).length;
    try {
      await until(() => stderr.includes('CONNECTION ESTABLISHED') || exited);
      expect(exited).toBe(false);
      // s_client sends one KeyUpdate per "K" line (update_requested: the server owes one of its own before its next
      // write); the next line is written once this one went out.
      for (let i = 0; i < FLOOD && !exited; i++) {
        child.stdin.write('K\n');
        await until(() => keyUpdates('>>>') > i || exited);
      }
      if (!exited) {
        // Sent under the key of the last KeyUpdate: a reply means the server went through all of them in order.
        child.stdin.write(request);
        await until(() => exited || stdout.includes('HTTP/1.1 200'));
      }
      // Either OpenSSL closed the connection during the flood, or the connection still serves a request.
      expect(exited || stdout.includes('HTTP/1.1 200')).toBe(true);
      if (!exited) {
        expect(keyUpdates('>>>')).toBe(FLOOD);
        expect(keyUpdates('<<<')).toBeGreaterThanOrEqual(1);
      }
    } finally {
      if (!exited) child.kill('SIGKILL');
    }
    const fresh = await runCommand(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${sidecar.sidecar.inboundPort}`,
        ...certArgs(),
        '-alpn',
        'http/1.1',
        '-quiet',
      ],
      { input: request },
    );
    expect(fresh.stdout).toContain('HTTP/1.1 200');
  });
});
