// One request through a sidecar's outbound listener as an app's node:http client sends it (proxy form, no agent):
// what the app got, a body cut short told apart from a complete one, and the client's error when there was no answer
// at all (a connection closed without a status line). For tests of what the outbound makes of a peer's response.
import { request as httpRequest } from 'node:http';
import { PEER_HOST } from './sidecar-harness.js';

export interface OutboundCallResult {
  status?: number | undefined;
  body: string;
  /** The response ended without its message complete. */
  cut: boolean;
  error?: string;
}

/** `onData` runs at the first body chunk (the head is out by then). GET goes the lean lane, POST (body `x=1`) node:http. */
export function callThroughOutbound(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  onData?: () => void,
): Promise<OutboundCallResult> {
  return new Promise((resolve) => {
    const seen: OutboundCallResult = { body: '', cut: false };
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: `http://${PEER_HOST}${path}`,
        headers: { host: PEER_HOST },
        agent: false,
      },
      (res) => {
        seen.status = res.statusCode;
        res.on('data', (chunk: Buffer) => {
          if (seen.body === '') onData?.();
          seen.body += chunk.toString();
        });
        res.on('error', () => undefined); // a cut body: 'close' with the message incomplete says so
        res.on('close', () => {
          seen.cut = !res.complete;
          resolve(seen);
        });
      },
    );
    req.on('error', (error) => {
      seen.error = error.message;
      resolve(seen);
    });
    req.end(method === 'POST' ? 'x=1' : undefined);
  });
}
