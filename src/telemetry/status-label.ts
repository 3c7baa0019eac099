// The `code` label of the request counters: an HTTP status the app or a peer chose. Node lets a response carry any
// status from 100 to 999, so an app answering with many unregistered ones would add a series for each, per peer.
// Registered statuses keep their number; any other is counted under its class. Pure.
import { STATUS_CODES } from 'node:http';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '7xx', '8xx', '9xx'];

/** `status` as a label value: its number when registered (`"404"`), else its class (`"4xx"`). */
export function statusLabel(status: number): string {
  if (STATUS_CODES[status] !== undefined) return String(status);
  return CLASSES[Math.floor(status / 100) - 1] ?? 'other';
}
