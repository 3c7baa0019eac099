// "N CA processes behind one address": a TCP round-robin balancer like a Kubernetes Service (kube-proxy). TLS
// passes through untouched (agents authenticate the CA end to end); a backend that refuses the connection is
// skipped and the next one tried, so killing a replica moves its share of new connections to the others.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Backend {
  readonly host: string;
  readonly port: number;
}

export interface TcpBalancer {
  readonly port: number;
  /** Connections each backend accepted. */
  readonly accepted: number[];
  close(): Promise<void>;
}

export async function startTcpBalancer(backends: readonly Backend[]): Promise<TcpBalancer> {
  let next = 0;
  const accepted = backends.map(() => 0);
  const open = new Set<Socket>();
  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    const tryBackend = (attempt: number) => {
      if (attempt >= backends.length || client.destroyed) {
        client.destroy();
        return;
      }
      const index = next % backends.length;
      next += 1;
      const backend = backends[index] as Backend;
      const upstream = connect(backend.port, backend.host);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        accepted[index] = (accepted[index] ?? 0) + 1;
        upstream.pipe(client);
        client.pipe(upstream);
        client.resume();
      });
      upstream.on('error', () => {
        if (!connected) tryBackend(attempt + 1);
        else client.destroy();
      });
      upstream.on('close', () => {
        if (connected) client.destroy();
      });
      client.on('close', () => upstream.destroy());
    };
    tryBackend(0);
  });
  server.maxConnections = 100_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
