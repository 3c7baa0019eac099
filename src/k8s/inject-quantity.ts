// Kubernetes resource quantities (`100m`, `1`, `128Mi`, `1G`, `1e3`, `250000000n`): checked against what the cluster
// can hold, and parsed to compare a request with its limit (an annotation that raises a request above the default
// limit raises the limit with it). Pure.

const QUANTITY_TEXT = 'expected a Kubernetes quantity such as 100m, 1, 128Mi or 1Gi';

// The decimal suffixes Kubernetes' parser accepts, n and u included: its grammar comment lists m to E only, but its
// suffixer knows nano and micro, and tools print CPU in nanocores (`250000000n`). Powers of ten and of two.
const DECIMAL: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

const QUANTITY = /^([+-]?)(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+)|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$/;

/**
 * The largest quantity, in nano-units: its milli-value must fit an int64. Kubernetes parses a larger one (capped at
 * 2^63-1 base units for some suffixes, kept as written for others), but the kubelet and the scheduler read CPU as an
 * int64 of millicores, which wraps past it: 1e18 cores would be an arbitrary number, negative or not.
 */
const MAX_NANOS = (2n ** 63n - 1n) * 1_000_000n;
/** Kubernetes reads the exponent as an int64 and keeps it as an int32: `1e4294967296` became 1. */
const MAX_EXPONENT = 2 ** 31 - 1;
/** Nano-units are the finest Kubernetes keeps: a finer value is rounded up (`0.0000000001` became `1n`). */
const NANO_EXPONENT = -9;

export type QuantityCheck =
  | { readonly ok: true; readonly nanos: bigint }
  | { readonly ok: false; readonly expected: string };

/**
 * The quantity exactly, in nano-units of its base unit (cores, bytes), or what was expected instead: a quantity
 * Kubernetes parses (its grammar: sign, digits with an optional fraction, then one of the binary suffixes, the decimal
 * ones or a decimal exponent), that is not negative (a resource amount never is), at most MAX_NANOS and exact to the
 * nano-unit. Such a value the API server accepts and stores as written.
 */
export function checkQuantity(text: string): QuantityCheck {
  const match = QUANTITY.exec(text);
  if (match === null) return refused(QUANTITY_TEXT);
  const [, sign, whole = '', wholeFraction, fractionOnly, exponent, suffix = ''] = match;
  const fraction = wholeFraction ?? fractionOnly ?? '';
  const power = exponent === undefined ? (DECIMAL[suffix] ?? 0) : Number(exponent);
  const binary = BINARY[suffix] ?? 0;
  if (Math.abs(power) > MAX_EXPONENT) return refused(QUANTITY_TEXT);
  const written = `${whole}${fraction}`.replace(/^0+/, '');
  if (written === '') return { ok: true, nanos: 0n };
  if (sign === '-') return refused('expected a quantity of 0 or more: a resource amount is never negative');
  const digits = withoutTrailingZeros(written);
  // The value is digits × 10^scale × 2^binary, the digits' last one not 0.
  const scale = power - fraction.length + (written.length - digits.length);
  // 10^17 is past MAX_NANOS' 9.2e15 base units, whatever the suffix adds.
  if (digits.length - 1 + scale > 16) return tooLarge();
  // Places below the nano-unit, cancelled only by dividing by 10^below = 2^below × 5^below. The 5s must come from the
  // digits, which then end in 5 and are odd: the 2s come from 2^binary alone. So the arithmetic below stays small
  // whatever was written: at most 86 digits (16 places above the unit, 9 down to the nano-unit, 60 below it).
  const below = NANO_EXPONENT - scale;
  if (below > binary) return tooPrecise();
  const value = BigInt(digits) << BigInt(binary);
  let nanos: bigint;
  if (below > 0) {
    const unit = 10n ** BigInt(below);
    if (value % unit !== 0n) return tooPrecise();
    nanos = value / unit;
  } else {
    nanos = value * 10n ** BigInt(-below);
  }
  return nanos > MAX_NANOS ? tooLarge() : { ok: true, nanos };
}

/** The quantity's value in base units (cores, bytes), or undefined when checkQuantity refuses it. */
export function parseQuantity(text: string): number | undefined {
  const checked = checkQuantity(text);
  return checked.ok ? Number(checked.nanos) / 1e9 : undefined;
}

/** By a loop: `/0+$/` tries from every 0 of a long run followed by other digits, quadratic in the text. */
function withoutTrailingZeros(digits: string): string {
  let end = digits.length;
  while (end > 0 && digits.charCodeAt(end - 1) === 48) end -= 1;
  return digits.slice(0, end);
}

function tooLarge(): QuantityCheck {
  return refused(`expected at most ${MAX_NANOS / 1_000_000n}m: Kubernetes holds no larger resource quantity`);
}

function tooPrecise(): QuantityCheck {
  return refused('expected a whole number of nano-units (1n = 0.000000001): Kubernetes rounds a finer value up');
}

function refused(expected: string): QuantityCheck {
  return { ok: false, expected };
}
