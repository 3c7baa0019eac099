// A config path naming a directory (or a FIFO, a device): the message says "not a regular file", not the ENOTREG
// that readRegularFile makes up and no user can look up.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-config-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('fail/a directory as the config file → MESHAUTH_ERR_FILE_UNREADABLE, "not a regular file"', () => {
  let caught: unknown;
  try {
    loadSidecarConfig(dir, {});
  } catch (error) {
    caught = error;
  }
  expect(isMeshauthError(caught, 'MESHAUTH_ERR_FILE_UNREADABLE'), String(caught)).toBe(true);
  expect((caught as Error).message).toBe(`${dir}: cannot read config file (not a regular file)`);
});
