// Kubernetes resource quantities (`100m`, `1`, `128Mi`, `1G`, `1e3`, `250000000n`): parsed only to compare a request
// with its limit, so an annotation that raises a request above the default limit raises the limit with it. Pure.

// The decimal suffixes Kubernetes' parser accepts, n and u included: its grammar comment lists m to E only, but its
// suffixer knows nano and micro, and tools print CPU in nanocores (`250000000n`).
const SUFFIX: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?)$/;

/** The quantity's value in base units, or undefined when the text is not a Kubernetes quantity. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (match === null) return undefined;
  const [, number, exponent, suffix] = match;
  const value = Number(number);
  if (exponent !== undefined) return value * 10 ** Number(exponent.slice(1));
  return value * (SUFFIX[suffix ?? ''] ?? 1);
}

export function isQuantity(text: string): boolean {
  const value = parseQuantity(text);
  return value !== undefined && value >= 0;
}
