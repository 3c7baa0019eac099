// An HTTP/2 stream nghttp2 resets with PROTOCOL_ERROR for breaking the protocol after its head (a body shorter than
// its content-length) is counted in meshauth_streams_reset_total{reason="protocol_error"} with one (rate-limited)
// line once the request reached the app. Found by an outside review (2026-12-03): on the external listener, whose
// bearer-token check is asynchronous, the same stream reset while the token was being checked was counted nowhere
// and logged nowhere (no ForwardHandler existed yet, and the stages stop silently on a closed stream).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { EXTERNAL_ISSUER, type ExternalSidecar, startExternalSidecar } from '../helpers/external-sidecar.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { rawH2Client, sendShortBody } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const PROTOCOL_ERROR = 0x1;

describe('external listener: an HTTP/2 stream reset for a protocol breach while its token is checked', () => {
  let external: ExternalSidecar;
  let log: LogLines;
  let jwks: Server;
  let key: SigningKey;
  /** Answers the held JWKS requests; until called, every JWKS request waits. */
  let release: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    key = await signingKey('k1');
    const body = jwksText(key);
    jwks = createServer((_req, res) => {
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    log = logLines('sidecar', 'info');
    external = await startExternalSidecar({
      logger: log.logger,
      jwksUri: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
    });
  });

  afterAll(async () => {
    release();
    await external?.close();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  /** Protocol-error resets counted on the external listener, and their log lines (written or suppressed). */
  async function protocolResets(): Promise<{ counted: number; lines: number }> {
    const { metrics } = external.sc;
    const counted = (await metrics.streamsReset.get()).values.find(
      (v) => v.labels.direction === 'external' && v.labels.reason === 'protocol_error',
    );
    const suppressed = (await metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'protocol_error');
    return {
      counted: counted?.value ?? 0,
      lines: log.find({ event: 'protocol_error', direction: 'external' }).length + (suppressed?.value ?? 0),
    };
  }

  /** POST /upload with a valid token, content-length 10 and 5 body bytes; resolves with the RST_STREAM code. */
  async function shortBody(path: string): Promise<number | undefined> {
    const token = await endUserToken(key, EXTERNAL_ISSUER, 'api');
    return sendShortBody(await rawH2Client(external.sc.sidecar.externalPort as number, external.ca.bundlePem), [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':path', path],
      [':authority', 'localhost'],
      ['authorization', `Bearer ${token}`],
    ]);
  }

  it('fail/reset while the JWKS is fetched → counted once as protocol_error, one line, nothing reaches the app', async () => {
    const before = await protocolResets();
    expect(await shortBody('/in-stage')).toBe(PROTOCOL_ERROR);
    expect(await eventually(async () => (await protocolResets()).counted === before.counted + 1)).toBe(true);
    release(); // the token check settles after the stream is gone: nothing more is counted or answered
    expect(await eventually(async () => (await external.sc.metrics.tokenVerifications.get()).values.length > 0)).toBe(
      true,
    );
    expect(await protocolResets()).toEqual({ counted: before.counted + 1, lines: before.lines + 1 });
    const line = log.find({ event: 'protocol_error', direction: 'external' })[0];
    if (line !== undefined) expect(line).toMatchObject({ reason: 'protocol_error' });
    expect(external.app.arriving.map((r) => r.url)).not.toContain('/in-stage');
  });

  it('fail/the same reset with the key set cached is counted exactly once too', async () => {
    const before = await protocolResets();
    expect(await shortBody('/cached')).toBe(PROTOCOL_ERROR);
    expect(await eventually(async () => (await protocolResets()).counted > before.counted)).toBe(true);
    expect(await protocolResets()).toEqual({ counted: before.counted + 1, lines: before.lines + 1 });
  });
});
