// Binding a server and learning the port it got: shared by every listener of the sidecar, the gateway and the CA.
import type { Server } from 'node:net';

/** Listens on `address` (port 0 picks a free port) and resolves with the port bound. */
export function listenOn(server: Server, address: { readonly host: string; readonly port: number }): Promise<number> {
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
