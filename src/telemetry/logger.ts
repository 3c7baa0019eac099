// Structured JSON logs (pino). One logger per process role; components take a Logger, never import a global.
// Secrets (tokens, keys) must never be passed to it: log fingerprints and serials instead.
import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; stderr by default so stdout stays clean for command output (`TOKEN=$(…)`). */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: options.name === undefined ? null : { component: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that discards everything, for unit tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
