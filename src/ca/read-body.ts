// Reads a request body up to a limit and stops at the limit (oversize input is refused before any parsing).
import type { IncomingMessage } from 'node:http';
import { MeshauthError } from '../errors/index.js';

export function readBodyLimited(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
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
    req.once('error', reject);
  });
}
