// A raw HTTP/1.1 peer's request reader: the tests that play a misbehaving peer answer byte by byte, but still need to
// know where each request ends.
import type { Duplex } from 'node:stream';

/**
 * Calls `onRequest` with the head of each whole request `socket` receives (its body, by Content-Length, read and
 * skipped; chunked bodies are not used by these tests), in order.
 */
export function eachWholeRequest(socket: Duplex, onRequest: (head: string) => void): void {
  let pending = '';
  socket.on('data', (data: Buffer) => {
    pending += data.toString('latin1');
    // Bounded: each turn takes one whole request off `pending`.
    for (let guard = 0; guard < 100; guard++) {
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = pending.slice(0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      pending = pending.slice(end + 4 + length);
      onRequest(head);
    }
  });
}
