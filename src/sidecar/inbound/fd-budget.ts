// Keeps the connection cap below the process's open-file limit, with headroom for what must still work when the
// listener is full: the app hop (its pool), the outbound, the admin port (/readyz), files. Without it a flood
// reaches EMFILE first and legitimate requests fail connecting to the app (503) while /readyz fails too.
import { readFileSync } from 'node:fs';

/** Descriptors kept free beyond the app pool: outbound sessions, admin, CA calls, config and policy files. */
export const FD_RESERVE = 256;

/** The soft `Max open files` limit (Linux /proc/self/limits), or undefined where it cannot be read or is unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const value = Number(soft);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The cap actually applied: the configured one, or less when the descriptor limit cannot hold it plus the reserve. */
export function effectiveMaxConnections(
  configured: number,
  fileLimit: number | undefined,
  appConnections: number,
): number {
  if (fileLimit === undefined) return configured;
  return Math.max(1, Math.min(configured, fileLimit - appConnections - FD_RESERVE));
}
