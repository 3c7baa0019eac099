// The streams this sidecar has open on each HTTP/2 session, against the peer's SETTINGS_MAX_CONCURRENT_STREAMS. A
// request past the peer's limit waits here, in arrival order, for a stream of that session to end, instead of in
// nghttp2's queue: a stream queued there and cancelled at its timeout could still reach the peer after its caller
// had been answered 504 (node:http2 sends what is pending before each cancel, which frees a slot for the next queued
// stream), and a stream a peer that allows none held could not be cancelled at all. Here a request that times out
// while waiting is dropped unsent, and its wait counts toward outbound.timeout like any wait before a stream.
import type { ClientHttp2Session } from 'node:http2';

/** A request waiting for a slot: woken once one frees (or the session ends), to pick a session again. */
export interface SlotWaiter {
  slotFree(): void;
}

interface Slots {
  open: number;
  readonly waiting: SlotWaiter[];
}

const kSlots = Symbol('meshauth.streamSlots');
type SlottedSession = ClientHttp2Session & { [kSlots]?: Slots };

function slotsOf(session: SlottedSession): Slots {
  let slots = session[kSlots];
  if (slots === undefined) {
    slots = { open: 0, waiting: [] };
    session[kSlots] = slots;
  }
  return slots;
}

/**
 * How many streams this sidecar may have open on `session`: the peer's limit (unlimited until it says otherwise), and
 * none before the peer acknowledged this sidecar's SETTINGS. The bound on a response head's decoded size
 * (SETTINGS_MAX_HEADER_LIST_SIZE) holds only from that acknowledgement: node:http2 sizes a stream's header buffer
 * when the stream is made, and a stream made before it would take a head of up to 16 MiB, which HPACK lets a peer
 * send in a few KB of frames.
 */
export function peerStreamLimit(session: ClientHttp2Session): number {
  if (session.pendingSettingsAck) return 0;
  return session.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
}

/**
 * Takes a stream slot of `session`: false when the peer's limit is reached. Waiters are woken as soon as a slot
 * frees (releaseStreamSlot), so a free slot with waiters in line is one a woken waiter did not take.
 */
export function takeStreamSlot(session: ClientHttp2Session): boolean {
  const slots = slotsOf(session);
  if (slots.open >= peerStreamLimit(session)) return false;
  slots.open += 1;
  return true;
}

/** Gives a slot back (its stream ended, or was never made) and wakes the waiters it lets through. */
export function releaseStreamSlot(session: ClientHttp2Session): void {
  const slots = slotsOf(session);
  slots.open -= 1;
  wake(session, slots);
}

export function waitForStreamSlot(session: ClientHttp2Session, waiter: SlotWaiter): void {
  slotsOf(session).waiting.push(waiter);
}

/** A waiter that gave up (timed out, its caller left): it no longer holds a place in line. */
export function leaveStreamSlotQueue(session: ClientHttp2Session, waiter: SlotWaiter): void {
  const waiting = slotsOf(session).waiting;
  const index = waiting.indexOf(waiter);
  if (index !== -1) waiting.splice(index, 1);
}

/** The peer changed or acknowledged SETTINGS (there may be room now): the waiters there is room for go on. */
export function wakeStreamSlotWaiters(session: ClientHttp2Session): void {
  const slots = (session as SlottedSession)[kSlots];
  if (slots !== undefined) wake(session, slots);
}

/** The session ended or was given up: every waiter picks again (a new session, another endpoint, or an answer). */
export function releaseStreamSlotWaiters(session: ClientHttp2Session): void {
  const slots = (session as SlottedSession)[kSlots];
  if (slots === undefined) return;
  for (const waiter of slots.waiting.splice(0)) waiter.slotFree();
}

/**
 * Wakes waiters in arrival order while there is room: a woken waiter takes its slot at once when the session is still
 * the one its endpoint hands out, or goes elsewhere (a new session, an answer) and leaves the room to the next.
 */
function wake(session: ClientHttp2Session, slots: Slots): void {
  while (slots.waiting.length > 0 && slots.open < peerStreamLimit(session))
    (slots.waiting.shift() as SlotWaiter).slotFree();
}
