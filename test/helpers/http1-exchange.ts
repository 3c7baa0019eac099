// One request through an Http1Client, as a caller of the client sees it: the status, the body, and the error code
// when the exchange failed (status 0 then). For tests of the client itself, without a ForwardHandler.
import type { Http1Client, Http1Request } from '../../src/sidecar/http1-client.js';

export interface Http1Outcome {
  readonly status: number;
  readonly body: string;
  readonly error?: string;
}

export function http1Exchange(client: Http1Client, request: Http1Request): Promise<Http1Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    let body = '';
    client.dispatch(request, {
      onConnect: () => undefined,
      onHeaders: (code: number) => {
        status = code;
        return true;
      },
      onData: (chunk: Buffer) => {
        body += chunk.toString('latin1');
        return true;
      },
      onComplete: () => resolve({ status, body }),
      onError: (error: Error & { code?: string }) => resolve({ status: 0, body, error: error.code ?? error.message }),
    });
  });
}
