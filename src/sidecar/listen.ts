// Small lifecycle helpers shared by the listeners: listen on a HostPort and resolve the bound port; poll a
// condition until a deadline (drain). Bounded by design: every wait ends at its deadline.
import type { Server } from 'node:net';
import type { HostPort } from '../config/index.js';

export function listenOn(server: Server, address: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? bound.port : address.port);
    });
  });
}

const POLL_MS = 25;

/** Resolves when `done()` is true or at `deadline` (ms since epoch), whichever comes first. */
export async function waitUntil(deadline: number, done: () => boolean): Promise<boolean> {
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)));
  }
  return true;
}
