// The benchmark's upstream app: a plain node:http server answering every request with the same 1 KiB body.
// Run as its own process (`node dist/bench/app.js`); prints `{"port":N}` once listening on 127.0.0.1.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

export const APP_BODY_BYTES = 1024;

export interface RunningApp {
  readonly port: number;
  close(): Promise<void>;
}

export function startApp(): Promise<RunningApp> {
  const body = Buffer.alloc(APP_BODY_BYTES, 'x');
  const server = createServer({ keepAliveTimeout: 120_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : 0,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { port } = await startApp();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}
