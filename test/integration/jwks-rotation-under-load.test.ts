// Checklist L03: an end-user issuer rotates its signing key while 8 callers keep sending tokens through a real
// sidecar pair (callers → A's outbound → B's inbound, which verifies them against the issuer's JWKS on 127.0.0.1).
// The issuer publishes a new kid, switches signing to it, then removes the old key. Tokens of the new key never
// fail; tokens of the removed key pass while B's cache still holds it and are refused (401
// MESHAUTH_ERR_TOKEN_INVALID) once B's background refresh has dropped it; no other request fails; the JWKS server
// sees one fetch per cause (start-up, the first new kid, the background refresh, one unknown-kid retry per
// cooldown), however many tokens ask. B's clock is the test's: cooldowns pass without waiting. Only setInterval is
// faked, from B's start until the test has fired B's 5-minute background refresh; sockets and every other timer are
// real.
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CredentialHolder } from '../../src/agent/index.js';
import { END_USER_DEFAULTS } from '../../src/authn/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { endUserToken, signingKey } from '../helpers/end-user-keys.js';
import { captureLogger, waitFor } from '../helpers/fault-harness.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { startApp, startTestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const AUDIENCE = 'shop';
const CALLERS = 8;
/** Of the callers, these keep the token they were given first (issued before the switch, not yet expired). */
const HOLDERS = 2;
/** Requests each phase carries (started and finished within it) before the test moves on. */
const PER_PHASE = 40;
const { jwksRefreshIntervalMs: REFRESH_MS, unknownKidCooldownMs: COOLDOWN_MS } = END_USER_DEFAULTS;

const PHASES = ['old', 'published', 'switched', 'removed', 'refreshing', 'refreshed', 'cooldown passed'] as const;
type Phase = (typeof PHASES)[number];

interface Outcome {
  readonly kid: string;
  readonly holder: boolean;
  readonly from: Phase;
  readonly to: Phase;
  readonly status: number | string;
  readonly code?: string;
}

/** Generous: the suite shares two cores with other workers; the conditions, not the time, are asserted. */
const WAIT_MS = 30_000;

const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers(); // first: servers close with the timers they were meant to have
  while (teardown.length > 0) await teardown.pop()?.();
});

describe('JWKS key rotation under load (L03)', () => {
  it('ok/the new kid never fails; fail/the removed kid is refused once the cache refreshes; fetches stay rate-limited', async () => {
    const ca = await TestCa.create('example.org');
    const app = await startApp();
    teardown.push(() => app.close());
    const jwks = new FlappingJwks();
    const [oldKey, newKey] = await Promise.all([signingKey('2026-11'), signingKey('2026-12')]);
    jwks.keys = [oldKey];
    await jwks.up();
    teardown.push(() => jwks.down().catch(() => undefined));

    let offset = 0;
    const metricsB = new Metrics();
    const idB = ca.idFor('/ns/shop/sa/b');
    // From B's start until its background refresh has been fired: B's JWKS cache schedules it with setInterval.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const b = await startSidecar(
      testConfig({ appPort: app.port, endUserIssuer: { url: jwks.url, audience: AUDIENCE } }),
      {
        logger: captureLogger('sidecar').logger,
        metrics: metricsB,
        holder: new CredentialHolder({ svid: (await ca.issue({ id: idB })).svid, bundle: ca.bundle }),
        now: () => new Date(Date.now() + offset),
      },
    );
    teardown.push(() => b.close(0));
    const a = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.inboundPort}`, ids: [idB] } } }),
    );
    teardown.push(() => a.sidecar.close(0));
    const dispatcher = new Agent({ connections: CALLERS });
    teardown.push(() => dispatcher.close());

    const call = async (token: string): Promise<{ status: number; code?: string }> => {
      const res = await request(`http://127.0.0.1:${a.sidecar.outboundPort}/orders`, {
        headers: { host: 'b.mesh', authorization: `Bearer ${token}` },
        dispatcher,
      });
      const text = await res.body.text();
      return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: JSON.parse(text).code };
    };
    const counted = async (name: string, label: string): Promise<number> => {
      const text = await metricsB.registry.getSingleMetricAsString(name);
      const line = text.split('\n').find((l) => l.includes(label));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const loaded = () => counted('meshauth_enduser_jwks_refreshes_total', 'result="ok"');

    const tokens = {
      [oldKey.kid]: await endUserToken(oldKey, jwks.url, AUDIENCE, 'alice', 3600),
      [newKey.kid]: await endUserToken(newKey, jwks.url, AUDIENCE, 'bob', 3600),
    };
    let signing = oldKey.kid; // the kid of the tokens the issuer hands out now
    await waitFor(
      'B to accept the old key',
      async () => (await call(tokens[oldKey.kid] as string)).status === 200,
      WAIT_MS,
    );
    expect(jwks.requests).toBe(1); // start-up

    let phase: Phase = 'old';
    let stop = false;
    const outcomes: Outcome[] = [];
    const callers = Array.from({ length: CALLERS }, async (_, i) => {
      const holder = i < HOLDERS;
      while (!stop) {
        const kid = holder ? oldKey.kid : signing;
        const from = phase;
        let result: { status: number | string; code?: string };
        try {
          result = await call(tokens[kid] as string);
        } catch (error) {
          result = { status: (error as Error).message };
        }
        outcomes.push({ kid, holder, from, to: phase, ...result });
        await new Promise((resolve) => setTimeout(resolve, 5)); // paced: steady callers, not a CPU spin
      }
    });
    const settled = (p: Phase, which: (o: Outcome) => boolean = () => true) =>
      waitFor(
        `${PER_PHASE} requests in phase ${p}`,
        () => (outcomes.filter((o) => o.from === p && o.to === p && which(o)).length >= PER_PHASE ? true : undefined),
        WAIT_MS,
      );
    const enter = async (next: Phase, change: () => void | Promise<void>) => {
      await change();
      phase = next;
      await settled(next);
    };

    try {
      await settled('old');
      // The issuer publishes the new key beside the old one: nothing asks B to fetch it yet.
      await enter('published', () => {
        jwks.keys = [newKey, oldKey];
      });
      expect(jwks.requests).toBe(1);
      // More than a cooldown later it signs with the new key: the first new-kid token fetches the key set once;
      // every new-kid token waits for that one fetch or finds the key.
      await enter('switched', () => {
        offset += COOLDOWN_MS + 1;
        signing = newKey.kid;
      });
      expect(jwks.requests).toBe(2);
      // The old key leaves the JWKS: B still holds it, so its holders pass until B's cache refreshes.
      await enter('removed', () => {
        jwks.keys = [newKey];
      });
      await settled('removed', (o) => o.holder);
      expect(jwks.requests).toBe(2);
      // Five minutes on, B's background refresh runs and drops the old key.
      phase = 'refreshing';
      const before = await loaded();
      offset += REFRESH_MS;
      vi.advanceTimersByTime(REFRESH_MS);
      vi.useRealTimers();
      await waitFor('the background refresh', async () => (await loaded()) === before + 1 || undefined, WAIT_MS);
      phase = 'refreshed';
      await settled('refreshed', (o) => o.holder);
      expect(jwks.requests).toBe(3); // the removed kid's tokens cost nothing within the cooldown of that refresh
      // A cooldown later, the removed kid's tokens cause one more fetch in all, still without the key.
      await enter('cooldown passed', () => {
        offset += COOLDOWN_MS + 1;
      });
      await settled('cooldown passed', (o) => o.holder);
      expect(jwks.requests).toBe(4);
    } finally {
      stop = true;
      await Promise.all(callers);
    }

    // Tokens of the new key never fail.
    const ofNew = outcomes.filter((o) => o.kid === newKey.kid);
    expect(ofNew.length).toBeGreaterThan(0);
    expect(ofNew.filter((o) => o.status !== 200)).toEqual([]);
    // Tokens of the old key: 200 while B holds it (until the refresh), 401 with the stable code after it.
    const ofOld = outcomes.filter((o) => o.kid === oldKey.kid);
    const held = (o: Outcome) => PHASES.indexOf(o.to) < PHASES.indexOf('refreshing');
    const dropped = (o: Outcome) => PHASES.indexOf(o.from) > PHASES.indexOf('refreshing');
    expect(ofOld.filter(held).length).toBeGreaterThan(0);
    expect(ofOld.filter(held).filter((o) => o.status !== 200)).toEqual([]);
    const refused = ofOld.filter(dropped);
    expect(refused.length).toBeGreaterThanOrEqual(2 * PER_PHASE);
    expect(refused.filter((o) => o.status !== 401 || o.code !== 'MESHAUTH_ERR_TOKEN_INVALID')).toEqual([]);
    // Those in flight while the cache swapped its keys: one or the other, nothing else.
    const swapping = ofOld.filter((o) => !held(o) && !dropped(o));
    expect(swapping.filter((o) => o.status !== 200 && o.code !== 'MESHAUTH_ERR_TOKEN_INVALID')).toEqual([]);
    // Every refusal is B's unknown_kid, counted once each; no other request failed.
    const failed = outcomes.filter((o) => o.status !== 200);
    expect(failed.filter((o) => o.kid !== oldKey.kid)).toEqual([]);
    expect(await counted('meshauth_enduser_token_verifications_total', 'result="unknown_kid"')).toBe(failed.length);
    expect(await loaded()).toBe(4);
    expect(jwks.requests).toBe(4);
    expect(b.ready()).toBe(true);
    console.log(
      JSON.stringify({ requests: outcomes.length, newKid: ofNew.length, oldKid: ofOld.length, refused: failed.length }),
    );
  }, 120_000);
});
