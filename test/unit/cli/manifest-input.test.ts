// The bounded read of `meshauth inject -f FILE|-`: a file and a stream are read whole up to the limit and refused
// one byte past it, with a message naming the input and the limit; a stream is not read on after the refusal. Small
// limits stand in for the 64 MiB default (its e2e is test/e2e/inject-manifest-too-large.test.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_MANIFEST_BYTES,
  readManifestFile,
  readManifestInput,
  readManifestStream,
} from '../../../src/cli/manifest-input.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-manifest-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIMIT = 1000;
const DOC = 'kind: ConfigMap\n';

async function refusal(run: () => Promise<unknown>): Promise<{ code: string; reason: string; message: string }> {
  try {
    await run();
  } catch (error) {
    if (isMeshauthError(error)) return { code: error.code, reason: error.reason ?? '', message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

/** `chunks` chunks of `size` bytes, counting how many were taken. */
function counted(chunks: number, size: number): { stream: AsyncIterable<Buffer>; taken: () => number } {
  let taken = 0;
  async function* stream(): AsyncGenerator<Buffer> {
    for (let i = 0; i < chunks; i++) {
      taken++;
      yield Buffer.alloc(size, 0x20);
    }
  }
  return { stream: stream(), taken: () => taken };
}

describe('readManifestStream (stdin)', () => {
  it('ok/exactly the limit is read whole', async () => {
    const { stream } = counted(10, LIMIT / 10);
    expect(await readManifestStream(stream, 'stdin', LIMIT)).toHaveLength(LIMIT);
  });

  it('fail/one byte past the limit → MESHAUTH_ERR_FILE_UNREADABLE naming stdin and the limit', async () => {
    const refused = await refusal(() =>
      readManifestStream(Readable.from([Buffer.alloc(LIMIT), Buffer.from('x')]), 'stdin', LIMIT),
    );
    expect(refused).toEqual({
      code: 'MESHAUTH_ERR_FILE_UNREADABLE',
      reason: 'manifest_too_large',
      message: 'stdin: manifest is larger than 1000 bytes, the most meshauth reads: split it into smaller inputs',
    });
  });

  it('fail/the refused stream is destroyed: stdin is not read on', async () => {
    const stream = Readable.from([Buffer.alloc(LIMIT + 1), Buffer.alloc(LIMIT)]);
    expect((await refusal(() => readManifestStream(stream, 'stdin', LIMIT))).reason).toBe('manifest_too_large');
    expect(stream.destroyed).toBe(true);
  });

  it('fail/an input without end stops being read at the limit', async () => {
    const { stream, taken } = counted(100_000, 100);
    expect((await refusal(() => readManifestStream(stream, 'stdin', LIMIT))).reason).toBe('manifest_too_large');
    expect(taken()).toBe(LIMIT / 100 + 1);
  });

  it('ok/readManifestInput("-") reads the stream it is given, with its limit', async () => {
    expect(await readManifestInput('-', LIMIT, Readable.from([Buffer.from(DOC)]))).toBe(DOC);
    const refused = await refusal(() => readManifestInput('-', DOC.length - 1, Readable.from([Buffer.from(DOC)])));
    expect(refused.message).toMatch(/^stdin: manifest is larger than 15 bytes/);
  });
});

describe('readManifestFile', () => {
  it('ok/exactly the limit is read whole', () => {
    const file = join(dir, 'at-limit.yaml');
    writeFileSync(file, ' '.repeat(LIMIT));
    expect(readManifestFile(file, LIMIT)).toHaveLength(LIMIT);
  });

  it('fail/one byte past the limit → MESHAUTH_ERR_FILE_UNREADABLE naming the file and the limit', async () => {
    const file = join(dir, 'past-limit.yaml');
    writeFileSync(file, ' '.repeat(LIMIT + 1));
    expect(await refusal(async () => readManifestFile(file, LIMIT))).toEqual({
      code: 'MESHAUTH_ERR_FILE_UNREADABLE',
      reason: 'manifest_too_large',
      message: `${file}: manifest is larger than 1000 bytes, the most meshauth reads: split it into smaller inputs`,
    });
    expect((await refusal(() => readManifestInput(file, LIMIT))).reason).toBe('manifest_too_large');
  });
});

describe('the default limit', () => {
  it('ok/64 MiB, named in MiB as well', async () => {
    expect(MAX_MANIFEST_BYTES).toBe(64 * 1024 * 1024);
    const refused = await refusal(() =>
      readManifestStream(Readable.from([Buffer.alloc(1), Buffer.alloc(MAX_MANIFEST_BYTES)]), 'stdin'),
    );
    expect(refused.message).toBe(
      'stdin: manifest is larger than 67108864 bytes (64 MiB), the most meshauth reads: split it into smaller inputs',
    );
  });
});
