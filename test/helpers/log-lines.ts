// A real pino logger whose JSON lines are kept in memory, so a test can assert the one log line a rejection writes.
import { createLogger, type Logger } from '../../src/telemetry/index.js';

export interface LogLines {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
  /** Lines whose fields include every given key/value. */
  find(fields: Record<string, unknown>): Record<string, unknown>[];
}

export function logLines(name = 'ca', level = 'debug'): LogLines {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    name,
    level,
    destination: {
      write(chunk: string) {
        for (const line of chunk.split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      },
    },
  });
  return {
    logger,
    lines,
    find: (fields) => lines.filter((line) => Object.entries(fields).every(([key, value]) => line[key] === value)),
  };
}
