// An app that takes a request and closes its connection without answering (it crashed, or its keep-alive close
// crossed the request): 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE, and the log line names the close (`connection_lost`,
// "it closed the connection before its answer"), not a refused connect, so an operator looks at the app's
// keep-alive or crashes rather than at its port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eachRequestHead, h2Answer, mtlsH2Session } from '../helpers/raw-app.js';
import { type RawAppBehind, startRawAppBehind } from '../helpers/sidecar-harness.js';

describe('inbound: the app closes its connection before answering', () => {
  const logs = logLines('inbound', 'info');
  let setup: RawAppBehind;

  beforeAll(async () => {
    setup = await startRawAppBehind({
      logger: logs.logger,
      onAppData: eachRequestHead((connection) => {
        connection.socket.destroy();
        return true;
      }),
    });
  });
  afterAll(async () => {
    await setup?.close();
  });

  it('fail/request read, connection closed, no answer → 503 UPSTREAM_UNAVAILABLE, reason connection_lost', async () => {
    const session = await mtlsH2Session(setup.b.sidecar.inboundPort, setup.peer, setup.ca.bundlePem);
    try {
      const answer = await h2Answer(session, { ':method': 'POST', ':path': '/orders', ':authority': 'b.mesh' });
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE' });
    } finally {
      session.close();
    }
    const lines = logs.lines.filter((line) => line.code === 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ reason: 'connection_lost' });
    expect(String(lines[0]?.msg)).toContain('app unavailable: it closed the connection before its answer');
    expect(await setup.rejected()).toEqual([['MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 1]]);
  });
});
