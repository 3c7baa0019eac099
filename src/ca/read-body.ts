// Reads a request body up to a limit and stops at the limit (oversize input is refused before any parsing). A body
// is read once per request: load shedding reads it before the request takes a place in the signing queue (a client
// that trickles its body must not hold one), and the handler gets the same bytes.
import type { IncomingMessage } from 'node:http';
import { MeshauthError } from '../errors/index.js';

const bodies = new WeakMap<IncomingMessage, Promise<Buffer>>();

/** The request's body, at most `limitBytes`; a second call returns what the first one read (or its error). */
export function readBodyLimited(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  let body = bodies.get(req);
  if (body === undefined) {
    body = readBody(req, limitBytes);
    bodies.set(req, body);
  }
  return body;
}

function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const tooLarge = (): MeshauthError =>
    new MeshauthError('MESHAUTH_ERR_CA_BODY_TOO_LARGE', `request body larger than ${limitBytes} bytes`, {
      reason: 'body_too_large',
    });
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limitBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    // The client left, or the server's request timeout cut it: a rejection of its own, not an internal error.
    const incomplete = () =>
      reject(
        new MeshauthError('MESHAUTH_ERR_CA_BAD_REQUEST', 'request body incomplete', { reason: 'body_incomplete' }),
      );
    req.once('error', incomplete);
    req.once('close', () => {
      if (!req.complete) incomplete();
    });
  });
}
