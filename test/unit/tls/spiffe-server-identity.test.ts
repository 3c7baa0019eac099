// spiffeServerIdentity parses a peer leaf once per exact DER: the checks that depend on the handshake — the
// validity period against the clock, the IDs the route allows — must still run at every call.
import { describe, expect, it } from 'vitest';
import { SpiffeId } from '../../../src/identity/index.js';
import { spiffeServerIdentity } from '../../../src/tls/index.js';
import { TestCa } from '../../helpers/test-ca.js';

describe('spiffeServerIdentity with a leaf seen before', () => {
  it('fail/the same leaf is refused once the clock passes its notAfter', async () => {
    const ca = await TestCa.create();
    const svid = await ca.issue({ id: ca.idFor('/ns/data/sa/db'), ttlMs: 3_600_000 });
    const cert = { raw: Buffer.from(svid.leaf.rawData) };
    let now = new Date(svid.leaf.notAfter.getTime() - 60_000);
    const seen: Array<[string, number]> = [];
    const check = spiffeServerIdentity(
      ca.trustDomain,
      [SpiffeId.parse(svid.id)],
      (id, notAfterMs) => seen.push([id.toString(), notAfterMs]),
      () => now,
    );
    expect(check('db', cert)).toBeUndefined();
    expect(seen).toEqual([[svid.id, svid.leaf.notAfter.getTime()]]);
    now = new Date(svid.leaf.notAfter.getTime() + 1_000);
    expect(check('db', cert)).toMatchObject({ code: 'MESHAUTH_ERR_PEER_IDENTITY', reason: 'peer_svid_invalid' });
    expect(seen).toHaveLength(1);
  });

  it('fail/the same leaf is refused by a route that does not allow its ID', async () => {
    const ca = await TestCa.create();
    const svid = await ca.issue({ id: ca.idFor('/ns/data/sa/db') });
    const cert = { raw: Buffer.from(svid.leaf.rawData) };
    expect(spiffeServerIdentity(ca.trustDomain, [SpiffeId.parse(svid.id)])('db', cert)).toBeUndefined();
    const other = spiffeServerIdentity(ca.trustDomain, [SpiffeId.parse(ca.idFor('/ns/data/sa/other'))]);
    expect(other('db', cert)).toMatchObject({ code: 'MESHAUTH_ERR_PEER_IDENTITY', reason: 'peer_id_mismatch' });
  });
});
