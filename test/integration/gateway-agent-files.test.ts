// The gateway joins the mesh with the sidecar's agent and the same `ca.token` key: a token file the agent cannot read
// is logged with that key and the file, as the sidecar's is (sidecar-agent-files.test.ts), not as a bare errno.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigFromObject, type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { oneRouteGatewayDocument, writeGatewayFiles } from '../helpers/gateway-files.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

describe('gateway agent: ca.token', () => {
  let dir: string;
  let document: Record<string, unknown>;
  let gateway: RunningGateway | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-gateway-token-'));
    // The CA is never reached: the bundle is read, then the token, and the token cannot be.
    document = oneRouteGatewayDocument(await writeGatewayFiles(dir));
  });

  afterEach(async () => {
    await gateway?.close(0);
    gateway = undefined;
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['fail/ca.token missing', () => join(dir, 'no-such-token'), 'cannot be read (ENOENT)'],
    [
      'fail/ca.token a directory',
      () => {
        const path = join(dir, 'token-dir');
        mkdirSync(path, { recursive: true });
        return path;
      },
      'not a regular file',
    ],
  ])(
    '%s → the bootstrap error names ca.token and the file',
    async (_name, tokenFile, why) => {
      const token = tokenFile();
      const ca = { ...(document.ca as Record<string, string>), token };
      const log = logLines('gateway');
      gateway = await startGateway(gatewayConfigFromObject({ ...document, ca }, 'gateway-test.yaml'), {
        logger: log.logger,
        metrics: new Metrics(),
      });
      const line = await waitFor(
        'a failed bootstrap logged',
        () => log.find({ component: 'agent', mode: 'bootstrap' })[0],
        10_000,
      );
      expect(line).toMatchObject({ level: 'error', code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'token_unreadable' });
      expect(line.error).toBe(`ca.token: token file ${token}: ${why}`);
      expect(gateway.ready()).toBe(false);
    },
    30_000,
  );
});
