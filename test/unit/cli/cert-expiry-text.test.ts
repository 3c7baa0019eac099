import { describe, expect, it } from 'vitest';
import { expiryText } from '../../../src/cli/cert.js';

describe('cert request/renew: the expiry it prints', () => {
  const leaf = new Date('2036-12-03T00:00:00.000Z');

  it("ok/the leaf's end when nothing above it ends sooner", () => {
    expect(expiryText(leaf, leaf)).toBe('expires 2036-12-03T00:00:00.000Z');
  });

  it('ok/the end of the certificate above a leaf that outlives it, with the leaf named beside it', () => {
    // Found in review: a 10-year leaf under a 30-day intermediate printed 2036, which a cron job would trust.
    const intermediate = new Date('2027-01-05T00:00:00.000Z');
    expect(expiryText(intermediate, leaf)).toBe(
      'expires 2027-01-05T00:00:00.000Z with the certificate above it; the leaf alone says 2036-12-03T00:00:00.000Z',
    );
  });
});
