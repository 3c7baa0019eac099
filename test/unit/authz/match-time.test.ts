import { describe, expect, it } from 'vitest';
import {
  createZoneFormatter,
  inWindow,
  localTime,
  parseClock,
  type TimeWindow,
  WEEKDAYS,
} from '../../../src/authz/policy/match-time.js';

function window(days: readonly string[], from: string, to: string, timeZone: string): TimeWindow {
  const dayMask = days.reduce((m, d) => m | (1 << WEEKDAYS.indexOf(d as (typeof WEEKDAYS)[number])), 0);
  return {
    dayMask,
    from: parseClock(from, false) ?? -1,
    to: parseClock(to, true) ?? -1,
    formatter: createZoneFormatter(timeZone),
    text: '',
  };
}

const OFFICE = window(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], '09:00', '17:00', 'Europe/Berlin');
const NIGHT = window(['Fri'], '22:00', '02:00', 'UTC');

function at(w: TimeWindow, iso: string): boolean {
  return inWindow(w, localTime(w.formatter, new Date(iso)));
}

describe('time windows', () => {
  it.each([
    // Berlin is UTC+1 in winter, UTC+2 in summer (DST), so the same UTC time can be in or out.
    ['ok/winter-office-hours', '2026-01-14T08:00:00Z', true], // Wed 09:00 CET
    ['fail/winter-before-opening', '2026-01-14T07:59:00Z', false], // Wed 08:59 CET
    ['fail/winter-at-closing-exclusive', '2026-01-14T16:00:00Z', false], // Wed 17:00 CET
    ['ok/summer-office-hours', '2026-07-15T07:00:00Z', true], // Wed 09:00 CEST
    ['fail/summer-same-utc-as-winter-close', '2026-07-15T15:00:00Z', false], // Wed 17:00 CEST
    ['fail/weekend', '2026-01-17T10:00:00Z', false], // Sat
    ['fail/sunday-utc-is-monday-00:30-in-berlin', '2026-01-11T23:30:00Z', false],
  ])('%s', (_name, iso, expected) => {
    expect(at(OFFICE, iso)).toBe(expected);
  });

  it.each([
    ['ok/overnight-start-day', '2026-01-16T23:00:00Z', true], // Fri 23:00
    ['ok/overnight-after-midnight-belongs-to-friday', '2026-01-17T01:59:00Z', true], // Sat 01:59
    ['fail/overnight-end-exclusive', '2026-01-17T02:00:00Z', false],
    ['fail/overnight-other-day', '2026-01-15T23:00:00Z', false], // Thu 23:00
    ['fail/overnight-thursday-night-spill', '2026-01-16T01:00:00Z', false], // Fri 01:00 belongs to Thursday
  ])('%s', (_name, iso, expected) => {
    expect(at(NIGHT, iso)).toBe(expected);
  });

  it('ok/24:00 as an end, fail/other clock texts', () => {
    expect(parseClock('24:00', true)).toBe(1440);
    expect(parseClock('24:00', false)).toBeUndefined();
    for (const bad of ['9:00', '09:60', '25:00', '09:00:00', '']) expect(parseClock(bad, true)).toBeUndefined();
  });
});
