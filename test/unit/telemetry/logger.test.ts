// Log lines are strict JSON: a child logger's binding replaces its parent's binding of the same name (pino would
// write `"component":"sidecar","component":"agent"`), at every depth, and other bindings are kept.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/telemetry/logger.js';
import { parseStrictJson } from '../../helpers/strict-json.js';

function capture(name?: string) {
  const lines: string[] = [];
  const logger = createLogger({
    ...(name === undefined ? {} : { name }),
    destination: { write: (line: string) => void lines.push(line) },
  });
  const parsed = () => lines.map((l) => parseStrictJson(l) as Record<string, unknown>);
  return { logger, lines, parsed };
}

describe('createLogger', () => {
  it('ok/a child component replaces the parent component (one key, strict JSON)', () => {
    const { logger, lines, parsed } = capture('sidecar');
    logger.child({ component: 'agent' }).info({ serial: 'ab' }, 'renewed');
    expect(lines[0]).not.toMatch(/"component".*"component"/);
    expect(parsed()[0]).toMatchObject({ component: 'agent', serial: 'ab', msg: 'renewed', level: 'info' });
  });

  it('ok/grandchildren and other bindings: the innermost value wins, every other binding stays', () => {
    const { logger, parsed } = capture('sidecar');
    const inbound = logger.child({ component: 'inbound', listener: 'mtls' });
    inbound.child({ component: 'authz', rule: 'r1' }).warn('denied');
    inbound.info('kept');
    logger.info('root');
    expect(parsed()).toEqual([
      expect.objectContaining({ component: 'authz', listener: 'mtls', rule: 'r1', msg: 'denied' }),
      expect.objectContaining({ component: 'inbound', listener: 'mtls', msg: 'kept' }),
      expect.objectContaining({ component: 'sidecar', msg: 'root' }),
    ]);
  });

  it('ok/a logger without a name and children without overlap are unchanged', () => {
    const { logger, parsed } = capture();
    logger.child({ a: 1 }).child({ b: '"quoted"\n' }).info('x');
    expect(parsed()[0]).toMatchObject({ a: 1, b: '"quoted"\n', msg: 'x' });
  });

  it('fail/the strict reader refuses a repeated key (so the tests above can fail)', () => {
    expect(() => parseStrictJson('{"component":"sidecar","component":"agent"}')).toThrow(/duplicate key/);
    expect(parseStrictJson('{"a":[1,{"b":null}],"c":"\\u0041"}')).toEqual({ a: [1, { b: null }], c: 'A' });
  });
});
