// Structured JSON logs (pino). One logger per process role; components take a Logger, never import a global.
// Secrets (tokens, keys) must never be passed to it: log fingerprints and serials instead.
import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';
import { MeshauthError } from '../errors/index.js';

export type Logger = PinoLogger;

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; stderr by default so stdout stays clean for command output (`TOKEN=$(…)`). */
  readonly destination?: DestinationStream;
}

/** The `--log-level` values (pino's levels; `silent` writes nothing). */
const LOG_LEVELS: readonly string[] = Object.freeze([...Object.keys(pino.levels.values), 'silent']);

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = logLevel(options.level ?? 'info');
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level,
      base: options.name === undefined ? null : { component: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      onChild: replaceRepeatedBindings,
    },
    destination,
  );
}

// pino appends a child's bindings to its parent's as pre-serialized JSON, so `logger.child({ component: 'agent' })`
// under a `component: 'sidecar'` logger writes the key twice: invalid for strict JSON readers and ambiguous in log
// pipelines. A child binding replaces the parent's binding of the same name instead (runs once per child logger,
// never per line).
function replaceRepeatedBindings(child: Logger): void {
  const holder = child as unknown as Record<symbol, unknown>;
  const chindings = holder[pino.symbols.chindingsSym];
  if (typeof chindings !== 'string' || chindings === '') return;
  // JSON.parse keeps the last value of a repeated key, at the first key's position.
  const merged = JSON.stringify(JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>);
  holder[pino.symbols.chindingsSym] = merged === '{}' ? '' : `,${merged.slice(1, -1)}`;
}

/**
 * `--log-level` as typed (any case). pino's own refusal of an unknown level is a bare Error ("default level:bogus must
 * be included in custom levels"): the CLI exited 1 with it, as for a runtime failure, and without a code. A level is
 * something the user typed: MESHAUTH_ERR_USAGE (exit 2) naming the values allowed.
 */
function logLevel(text: string): string {
  const level = text.toLowerCase();
  if (LOG_LEVELS.includes(level)) return level;
  throw new MeshauthError(
    'MESHAUTH_ERR_USAGE',
    `unknown log level ${JSON.stringify(text.slice(0, 40))}: expected one of ${LOG_LEVELS.join(', ')}`,
    { reason: 'log_level' },
  );
}

/** A logger that discards everything, for unit tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
