// Egress name lookups are bounded: at most two run at once (getaddrinfo holds one of libuv's four pool threads each,
// which file reads and the routes' resolver share), the rest wait in arrival order, and every CONNECT is answered
// within the TCP tunnels' connect timeout, its wait included: 503 reason dns_timeout, its line logged. Before, every
// CONNECT started its own lookup at once and waited for as long as the system resolver retried. The test answers the
// outbound's lookups itself (no query leaves the machine): names under stuck.egress.test never answer until released.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EgressLookupAnswer, EgressLookups } from '../../src/sidecar/outbound/egress-lookups.js';
import { logLines } from '../helpers/log-lines.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { rawHttpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

type LookupCallback = (error: NodeJS.ErrnoException | null, addresses: { address: string; family: number }[]) => void;

const stuck = vi.hoisted(() => ({ started: [] as string[], held: [] as (() => void)[], running: 0, mostRunning: 0 }));

vi.mock('node:dns', async (original) => {
  const dns = await original<typeof import('node:dns')>();
  const lookup = ((host: string, options: unknown, callback: LookupCallback) => {
    if (!host.endsWith('.stuck.egress.test'))
      return (dns.lookup as (...args: unknown[]) => void)(host, options, callback);
    stuck.started.push(host);
    stuck.running += 1;
    stuck.mostRunning = Math.max(stuck.mostRunning, stuck.running);
    stuck.held.push(() => {
      stuck.running -= 1;
      const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      callback(error, []);
    });
    return undefined;
  }) as typeof dns.lookup;
  return { ...dns, default: { ...dns, lookup }, lookup };
});

function releaseAll(): void {
  for (const release of stuck.held.splice(0)) release();
}

const DEADLINE_MS = 400;

describe('outbound: egress name lookups', () => {
  let sidecar: TestSidecar;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({ appPort: 1, egress: ['*.stuck.egress.test:80'] }),
      { tcpLimits: { connectTimeoutMs: DEADLINE_MS }, logger: logs.logger },
    );
  });
  afterAll(async () => {
    releaseAll();
    await sidecar?.sidecar.close(0);
  });

  it('fail/five CONNECTs to names that never resolve → two lookups at a time, each 503 dns_timeout', async () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'].map((label) => `${label}.stuck.egress.test`);
    const replies = await Promise.all(
      hosts.map((host) =>
        rawHttpExchange(sidecar.sidecar.outboundPort, `CONNECT ${host}:80 HTTP/1.1\r\nHost: ${host}:80\r\n\r\n`),
      ),
    );
    for (const reply of replies) {
      expect(reply).toMatch(/^HTTP\/1\.1 503 /);
      expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({
        code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
      });
    }
    // Only the first two were started: the others waited behind them, past the deadline, and never took a thread.
    expect(stuck.mostRunning).toBe(2);
    expect(stuck.started).toHaveLength(2);
    const lines = logs.find({ code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', reason: 'dns_timeout' });
    expect(lines).toHaveLength(5);
    expect(lines[0]?.msg).toMatch(/the name lookup took longer than the connect timeout/);
    releaseAll();
  });
});

describe('EgressLookups: the queue', () => {
  afterAll(releaseAll);

  it('ok/a waiting lookup starts when a running one returns, in arrival order', async () => {
    stuck.started.length = 0;
    const lookups = new EgressLookups(60_000, { maxInFlight: 1 });
    const answers: string[] = [];
    for (const label of ['first', 'second', 'third']) {
      lookups.lookup(`${label}.stuck.egress.test`, (answer) =>
        answers.push(`${label}:${'failure' in answer ? answer.failure : 'ok'}`),
      );
    }
    expect(stuck.started).toEqual(['first.stuck.egress.test']);
    stuck.held.shift()?.();
    await waitFor('the second lookup', () => stuck.started.length === 2);
    expect(stuck.started[1]).toBe('second.stuck.egress.test');
    stuck.held.shift()?.();
    await waitFor('the third lookup', () => stuck.started.length === 3);
    stuck.held.shift()?.();
    await waitFor('three answers', () => answers.length === 3);
    expect(answers).toEqual(['first:dns', 'second:dns', 'third:dns']);
  });

  it('fail/past the waiting room → dns_busy at once; a caller that left gives its place up, never started', async () => {
    stuck.started.length = 0;
    const lookups = new EgressLookups(60_000, { maxInFlight: 1, maxWaiting: 1 });
    const answers: string[] = [];
    const record = (label: string) => (answer: EgressLookupAnswer) => {
      answers.push(`${label}:${'failure' in answer ? answer.failure : 'ok'}`);
    };
    lookups.lookup('running.stuck.egress.test', record('running'));
    const leave = lookups.lookup('left.stuck.egress.test', record('left'));
    lookups.lookup('over.stuck.egress.test', record('over'));
    expect(answers).toEqual(['over:dns_busy']);
    leave();
    // Its place is free again: another name may wait now.
    lookups.lookup('next.stuck.egress.test', record('next'));
    expect(answers).toEqual(['over:dns_busy']);
    stuck.held.shift()?.();
    await waitFor('the next lookup started', () => stuck.started.length === 2);
    expect(stuck.started).toEqual(['running.stuck.egress.test', 'next.stuck.egress.test']);
    stuck.held.shift()?.();
    await waitFor('both answered', () => answers.length === 3);
    expect(answers).toEqual(['over:dns_busy', 'running:dns', 'next:dns']);
  });

  it('ok/CONNECTs to one name share its lookup: one name stuck takes one place, the others go on', async () => {
    stuck.started.length = 0;
    const lookups = new EgressLookups(60_000, { maxInFlight: 2 });
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      lookups.lookup('same.stuck.egress.test', (answer) =>
        answers.push(`same:${'failure' in answer ? answer.failure : 'ok'}`),
      );
    }
    lookups.lookup('other.stuck.egress.test', (answer) =>
      answers.push(`other:${'failure' in answer ? answer.failure : 'ok'}`),
    );
    expect(stuck.started).toEqual(['same.stuck.egress.test', 'other.stuck.egress.test']);
    releaseAll();
    await waitFor('six answers', () => answers.length === 6);
    expect(answers.filter((a) => a === 'same:dns')).toHaveLength(5);
  });
});
