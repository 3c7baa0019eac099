// Time windows for `when.time`: weekdays plus a local [from, to) range in an IANA time zone, via Intl
// (no dependency). Pure: the instant comes from the request, never from a clock read.
export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface TimeWindowSpec {
  readonly days?: readonly Weekday[] | undefined;
  readonly from: string;
  readonly to: string;
  readonly timeZone?: string | undefined;
}

export interface LocalTime {
  /** 0 = Sunday … 6 = Saturday. */
  readonly day: number;
  /** Minutes since local midnight. */
  readonly minute: number;
}

export interface TimeWindow {
  readonly dayMask: number;
  readonly from: number;
  readonly to: number;
  readonly formatter: Intl.DateTimeFormat;
  readonly text: string;
}

const CLOCK = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** Minutes since midnight for `HH:MM` (`24:00` allowed as an end), or undefined. */
export function parseClock(text: string, isEnd: boolean): number | undefined {
  if (isEnd && text === '24:00') return 24 * 60;
  const match = CLOCK.exec(text);
  return match === null ? undefined : Number(match[1]) * 60 + Number(match[2]);
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export function createZoneFormatter(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
}

export function localTime(formatter: Intl.DateTimeFormat, now: Date): LocalTime {
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of formatter.formatToParts(now)) {
    if (part.type === 'weekday') day = WEEKDAYS.indexOf(part.value as Weekday);
    else if (part.type === 'hour') hour = Number(part.value) % 24;
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

/**
 * In the window when the local weekday is listed and from ≤ time < to. A window with to < from crosses midnight:
 * its part after midnight belongs to the listed day it started on (Fri 22:00–02:00 covers Saturday 01:00).
 */
export function inWindow(window: TimeWindow, local: LocalTime): boolean {
  const dayListed = (day: number): boolean => (window.dayMask & (1 << day)) !== 0;
  if (window.from < window.to) {
    return dayListed(local.day) && local.minute >= window.from && local.minute < window.to;
  }
  if (local.minute >= window.from) return dayListed(local.day);
  return local.minute < window.to && dayListed((local.day + 6) % 7);
}
