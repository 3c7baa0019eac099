// The server side of an mTLS handshake on an accepted TCP socket, as tls.Server's own connection listener starts it
// (lib/_tls_wrap.js: tlsConnectionListener, onServerSocketSecure), minus one call. When a client certificate was
// asked for and its chain verified, Node 24's tls.Server reads the peer through its handle's
// getPeerX509Certificate() before the socket reaches any listener, only to see that a certificate is there; on a
// server socket that call copies the first intermediate of the client's chain and drops the original from the TLS
// session unfreed: about 8–10 KB of RSS per connection that no one ever gets back (bench/profile/storm-memory.ts,
// Node 24: 616 MiB after 48,000 connections through tls.Server, 276 MiB and flat through this function, the same as
// a server that asks for no certificate). Node 20's tls.Server makes no such call. Here the same checks are made
// with getPeerCertificate(true), which owns what it reads, and what it read is handed on: the inbound reads the
// client's chain from it instead of converting the certificates a second time.
//
// Node internals relied on (pinned by test/integration/inbound-node-internals.test.ts): the TLSSocket emits 'secure'
// when the server handshake completes, reports handshake errors as '_tlsError' until _releaseControl() is called,
// honours `handshakeTimeout`, and exposes OpenSSL's verification result as `_handle.verifyError()`.
import type { Socket } from 'node:net';
import {
  createSecureContext,
  type DetailedPeerCertificate,
  type SecureContext,
  type SecureContextOptions,
  TLSSocket,
} from 'node:tls';

/**
 * The context of acceptMtls's sockets, built as tls.Server builds its own (lib/_tls_wrap.js, setSecureContext):
 * the server's cipher-suite order wins (honorCipherOrder, default true there and false in createSecureContext), so
 * a client that lists ChaCha20 or AES-256 first still gets the profile's first suite.
 */
export function mtlsSecureContext(options: SecureContextOptions): SecureContext {
  return createSecureContext({ ...options, honorCipherOrder: options.honorCipherOrder ?? true });
}

export interface MtlsAcceptOptions {
  /**
   * The context of this connection, from mtlsSecureContext (a later rotation changes later connections only, as
   * setSecureContext does).
   */
  readonly secureContext: SecureContext;
  readonly handshakeTimeoutMs: number;
  readonly alpnProtocols: readonly string[];
  /**
   * The handshake completed and OpenSSL verified the client's chain against the context's CAs; `peer` is
   * `socket.getPeerCertificate(true)`, read once here.
   */
  readonly onSecure: (socket: TLSSocket, peer: DetailedPeerCertificate) => void;
  /**
   * The handshake failed, timed out, or ended in a chain OpenSSL refused (`socket.authorizationError` then says
   * why); called once, the socket still to be destroyed by the caller (as for tls.Server's 'tlsClientError').
   */
  readonly onFailure: (error: Error & { code?: string }, socket: TLSSocket) => void;
}

interface ServerTlsInternals {
  readonly _controlReleased: boolean | undefined;
  secureConnecting: boolean;
  _releaseControl(): boolean;
  readonly _handle: { verifyError(): (Error & { code?: string }) | null } | null;
}

/** Starts the TLS server handshake on `raw` with a client certificate required and verified; returns the socket. */
export function acceptMtls(raw: Socket, options: MtlsAcceptOptions): TLSSocket {
  return serverTlsSocket(raw, options, true, (socket, verifyError) => {
    // Node stores OpenSSL's verification code (a string) here, although its type says Error.
    const refuse = (code: string): void => {
      (socket as unknown as { authorizationError: string }).authorizationError = code;
      socket.destroy();
    };
    if (verifyError !== null) {
      refuse(verifyError.code ?? verifyError.message);
      return;
    }
    // A TLS 1.3 resumption verifies with no certificate at all (these listeners turn resumption off; checked anyway).
    const peer = socket.getPeerCertificate(true);
    if (peer.raw === undefined) {
      refuse('UNABLE_TO_GET_ISSUER_CERT');
      return;
    }
    socket.authorized = true;
    if (releaseControl(socket)) options.onSecure(socket, peer);
  });
}

/**
 * A server TLSSocket on `raw` that asks for a client certificate (and, with `rejectUnauthorized`, refuses a chain
 * OpenSSL did not verify), its handshake failures reported once through `options.onFailure`, and `onSecure` called
 * with OpenSSL's verdict when the handshake completes.
 */
function serverTlsSocket(
  raw: Socket,
  options: Omit<MtlsAcceptOptions, 'onSecure'>,
  rejectUnauthorized: boolean,
  onSecure: (socket: TLSSocket, verifyError: (Error & { code?: string }) | null) => void,
): TLSSocket {
  const socket = new TLSSocket(raw, {
    isServer: true,
    secureContext: options.secureContext,
    requestCert: true,
    rejectUnauthorized,
    ALPNProtocols: [...options.alpnProtocols],
    handshakeTimeout: options.handshakeTimeoutMs,
  } as ConstructorParameters<typeof TLSSocket>[1]);
  const internals = socket as unknown as ServerTlsInternals;
  let reported = false;
  // Once reported, or handed to its owner, a socket's errors are no longer handshake failures.
  const settled = (): boolean => reported || internals._controlReleased === true;
  const fail = (error: Error & { code?: string }): void => {
    if (settled()) return;
    reported = true;
    options.onFailure(error, socket);
  };
  socket.on('secure', () => onSecure(socket, internals._handle?.verifyError() ?? null));
  socket.on('_tlsError', fail);
  socket.on('error', fail);
  // Closed before the handshake completed without an error of its own (a refused chain, or the client left):
  // tls.Server reports that as ECONNRESET. Every handshaken connection closes here too, hence the check before the
  // Error is made: capturing its stack cost more than the rest of a close.
  socket.on('close', (hadError: boolean) => {
    if (hadError || settled()) return;
    fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  });
  return socket;
}

/** Hands a handshaken socket to its owner (its errors no longer handshake failures); false when it is gone. */
function releaseControl(socket: TLSSocket): boolean {
  const internals = socket as unknown as ServerTlsInternals;
  if (socket.destroyed || !internals._releaseControl()) return false;
  internals.secureConnecting = false;
  return true;
}

export interface OptionalCertificateAcceptOptions {
  /** The context of this connection (mtlsSecureContext of the server's current options). */
  readonly secureContext: SecureContext;
  readonly handshakeTimeoutMs: number;
  /** ALPN protocols offered (a client offering only others is refused: no_application_protocol). */
  readonly alpnProtocols: readonly string[];
  /**
   * The handshake completed. `socket.authorized` is true when the client presented a chain OpenSSL verified against
   * the context's CAs; otherwise `socket.authorizationError` holds OpenSSL's code (a client without a certificate
   * included), or OpenSSL's message where Node has no name for the code. Nothing of the peer has been read.
   */
  readonly onSecure: (socket: TLSSocket) => void;
  /** As MtlsAcceptOptions.onFailure: called once, the socket still to be destroyed by the caller. */
  readonly onFailure: (error: Error & { code?: string }, socket: TLSSocket) => void;
}

/**
 * The server side of a TLS handshake that asks for a client certificate but lets a connection without one (or with
 * a chain OpenSSL refused) through, its verdict on the socket: what tls.Server does with requestCert and
 * rejectUnauthorized false, minus the getPeerX509Certificate() call that leaks on Node 24 (see above). Unlike
 * acceptMtls it reads nothing of the peer: turning a refused chain's certificates into objects is what the caller
 * must be able to avoid (a key on a curve without a NIST name crashes Node 24 there).
 */
export function acceptWithOptionalCertificate(raw: Socket, options: OptionalCertificateAcceptOptions): TLSSocket {
  // Not rejectUnauthorized: the verdict is left on the socket, and the caller refuses what OpenSSL did not verify.
  return serverTlsSocket(raw, options, false, (socket, verifyError) => {
    // Node stores OpenSSL's verification code (a string) here, although its type says Error. Node has no name for
    // several codes (name constraints, a CA without keyCertSign, an unhandled critical extension, a weak digest):
    // those it calls UNSPECIFIED, and OpenSSL's own words say which it was.
    if (verifyError !== null) {
      const code = verifyError.code === undefined || verifyError.code === 'UNSPECIFIED' ? undefined : verifyError.code;
      (socket as unknown as { authorizationError: string }).authorizationError = code ?? verifyError.message;
    } else socket.authorized = true;
    if (releaseControl(socket)) options.onSecure(socket);
  });
}
