// A duration flag read and bounded, refused in the words the user typed: the shared range check spells the value
// back from milliseconds, and `--ttl 0s` came back as "--ttl 0ms".
import { formatDuration, parseDuration } from '../config/duration.js';
import { MeshauthError } from '../errors/index.js';

export interface DurationRange {
  readonly min: number;
  readonly max: number;
}

/** `text` in milliseconds; MESHAUTH_ERR_USAGE when it is no duration, MESHAUTH_ERR_TTL_OUT_OF_RANGE outside `range`. */
export function durationFlag(flag: string, text: string, range: DurationRange): number {
  const ms = parseDuration(text);
  if (ms < range.min || ms > range.max) {
    throw new MeshauthError(
      'MESHAUTH_ERR_TTL_OUT_OF_RANGE',
      `${flag} ${text.trim()} is out of range: must be between ${formatDuration(range.min)} and ${formatDuration(range.max)}`,
      { reason: 'ttl_out_of_range' },
    );
  }
  return ms;
}
