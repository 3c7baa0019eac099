// Name resolution of TCP route addresses: IP literals pass through without a lookup; the shared resolver's
// answer is used as is; no address is an ENOTFOUND failure (the app's connection is then reset).
import { describe, expect, it } from 'vitest';
import { resolveHostWith } from '../../../../src/sidecar/tcp/index.js';

describe('resolveHostWith', () => {
  const asked: string[] = [];
  const resolve = resolveHostWith({
    resolve: async (name) => {
      asked.push(name);
      return { addresses: name === 'db.data' ? ['10.0.0.7', 'fd00::7'] : [] };
    },
  });

  it('ok/an IP literal is used without asking the resolver', async () => {
    expect(await resolve('10.1.2.3')).toEqual(['10.1.2.3']);
    expect(await resolve('::1')).toEqual(['::1']);
    expect(asked).toEqual([]);
  });

  it('ok/a name resolves to every address', async () => {
    expect(await resolve('db.data')).toEqual(['10.0.0.7', 'fd00::7']);
  });

  it('fail/a name without addresses is ENOTFOUND', async () => {
    await expect(resolve('gone.data')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
