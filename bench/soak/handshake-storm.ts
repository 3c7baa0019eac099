// Checklist L04 at full size, for the soak (`--handshake-storm`): new mTLS connections straight to the server
// sidecar's inbound at a fixed rate (default 500 a second) for the whole run, each carrying one request with
// `Connection: close`; one in ten presents a certificate from another CA and one in ten none, and must be refused
// without an HTTP byte. In flight is capped below the inbound's per-address handshake share (a quarter of its 256
// places once half are taken), so what the sidecar refuses is the bad certificates, not this client's pile-up.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';

type Kind = 'ok' | 'untrusted' | 'no_cert';

/** The handshake-failure reason the sidecar counts for each refused kind. */
export const STORM_REASONS = { untrusted: 'unknown_ca', no_cert: 'no_client_cert' } as const;

export const STORM_MAX_IN_FLIGHT = 60;

export interface StormResult {
  readonly sent: Record<Kind, number>;
  /** ok: answered 200; refused: closed without an HTTP byte. */
  readonly asExpected: Record<Kind, number>;
  readonly firstUnexpected: string[];
  /** Connections not opened on time because STORM_MAX_IN_FLIGHT were still open (the sidecar fell behind the rate). */
  readonly deferred: number;
}

export class HandshakeStorm {
  readonly #port: number;
  readonly #contexts: Record<Kind, SecureContext>;
  readonly #result: StormResult = {
    sent: { ok: 0, untrusted: 0, no_cert: 0 },
    asExpected: { ok: 0, untrusted: 0, no_cert: 0 },
    firstUnexpected: [],
    deferred: 0,
  };
  #n = 0;
  #inFlight = 0;
  #deferred = 0;

  /**
   * Client credentials from `meshauth ca issue` in `work`: one from the mesh CA in `caDir`, one from a second CA
   * initialised here (same trust domain, a root the sidecar does not trust).
   */
  constructor(options: {
    readonly main: string;
    readonly work: string;
    readonly caDir: string;
    readonly td: string;
    readonly port: number;
  }) {
    const { main, work, caDir, td } = options;
    const cli = (args: readonly string[]) =>
      execFileSync(process.execPath, [main, ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    const id = `spiffe://${td}/ns/soak/sa/storm`;
    cli(['ca', 'issue', '--dir', caDir, '--id', id, '--ttl', '24h', '--out', join(work, 'storm')]);
    cli(['ca', 'init', '--trust-domain', td, '--dir', 'stranger-ca']);
    cli(['ca', 'issue', '--dir', 'stranger-ca', '--id', id, '--ttl', '24h', '--out', join(work, 'stranger')]);
    const ca = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
    const pair = (prefix: string) => ({
      cert: readFileSync(join(work, `${prefix}.crt`), 'utf8'),
      key: readFileSync(join(work, `${prefix}.key`), 'utf8'),
    });
    this.#port = options.port;
    this.#contexts = {
      ok: createSecureContext({ ...pair('storm'), ca }),
      untrusted: createSecureContext({ ...pair('stranger'), ca }),
      no_cert: createSecureContext({ ca }),
    };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Opens one connection now, unless STORM_MAX_IN_FLIGHT are open (then it is counted as deferred). */
  fire(): void {
    if (this.#inFlight >= STORM_MAX_IN_FLIGHT) {
      this.#deferred++;
      return;
    }
    const i = this.#n++;
    const kind: Kind = i % 10 === 3 ? 'untrusted' : i % 10 === 7 ? 'no_cert' : 'ok';
    this.#result.sent[kind]++;
    this.#inFlight++;
    let reply = '';
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port: this.#port,
        secureContext: this.#contexts[kind],
        checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
        ALPNProtocols: ['http/1.1'],
      },
      () => socket.write(`GET /storm/${i} HTTP/1.1\r\nHost: server.soak\r\nConnection: close\r\n\r\n`),
    );
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('close', () => {
      this.#inFlight--;
      const expected = kind === 'ok' ? reply.startsWith('HTTP/1.1 200 ') : reply === '';
      if (expected) this.#result.asExpected[kind]++;
      else if (this.#result.firstUnexpected.length < 10) {
        this.#result.firstUnexpected.push(`#${i} ${kind}: ${reply.slice(0, 80) || '(no reply)'}`);
      }
    });
  }

  result(): StormResult {
    return { ...this.#result, deferred: this.#deferred };
  }
}
