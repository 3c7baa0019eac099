// A policy reload parses the new text on a worker thread: while a large but valid policy (1 MiB: about 3,000 rules
// of ten lines, seconds of yaml parsing) is being reloaded, an HTTP server in the same process keeps answering, and
// once the reload is over the new policy is in force. Review finding: the reload parsed on the event loop, so for
// those seconds (up to 15 s for other texts within the bounds) the sidecar and the gateway answered nothing: health
// probes timed out and requests stalled, although the previous policy stayed in force until the new one was ready.
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../src/authz/decide.js';
import type { PolicyWatcher } from '../../src/authz/policy-watcher.js';
import { SpiffeId } from '../../src/identity/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import {
  largeRealPolicy,
  POLICY_HEAD,
  type PolicyFile,
  reloadOnlyWatcher,
  policyReloads as reloads,
  writePolicyFile,
} from '../helpers/policy-reloads.js';

const SMALL = `${POLICY_HEAD}  - name: allow-one\n    action: allow\n    to: { paths: ["/one"] }\n`;

describe('policy reload off the event loop', () => {
  let policy: PolicyFile;
  let file: string;
  let metrics: Metrics;
  let watcher: PolicyWatcher;
  let server: Server;
  let agent: Agent;

  beforeEach(async () => {
    policy = await writePolicyFile('meshauth-reload-thread-', SMALL);
    file = policy.file;
    metrics = new Metrics();
    watcher = reloadOnlyWatcher({ file, logger: silentLogger(), metrics });
    await watcher.start();
    server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    agent = new Agent();
  });

  afterEach(async () => {
    watcher.close();
    await agent.close();
    await new Promise((closed) => server.close(closed));
    await policy.remove();
  });

  it('ok/requests to a server in the same process are answered while a 1 MiB policy is parsed; then it applies', {
    timeout: 120_000,
  }, async () => {
    const heavy = largeRealPolicy();
    expect(heavy.rules).toBeGreaterThan(2_500);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
    await writeFile(file, heavy.text);
    let settled = false;
    const reloading = watcher.reload().finally(() => {
      settled = true;
    });
    // One request after another until three were answered while the reload was still running, or it is over. On the
    // event loop the parse held every one of them until after the reload had settled.
    let answeredDuring = 0;
    while (!settled && answeredDuring < 3) {
      const response = await request(url, { dispatcher: agent });
      expect(await response.body.text()).toBe('ok');
      if (!settled) answeredDuring += 1;
    }
    expect(answeredDuring).toBe(3);
    await reloading;
    expect(await reloads(metrics, 'success')).toBe(1);
    expect(watcher.current().rules).toHaveLength(heavy.rules);
    const last = heavy.rules - 1;
    const allowed = {
      peerId: SpiffeId.parse(`spiffe://example.org/ns/n${last}/sa/s`),
      method: 'GET',
      path: `/api/other/${last}`,
      host: `svc-${last}.example.org`,
      port: 8080,
      headers: new Map<string, readonly string[]>(),
      sourceIp: `10.${last % 250}.0.1`,
      now: new Date('2026-03-04T10:00:00Z'),
    };
    expect(decide(watcher.current(), allowed).decision).toBe('allow');
  });
});
