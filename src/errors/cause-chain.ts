// An error and the errors it wraps (`cause`), nearest first, as far as four deep: Node and undici wrap a TLS or
// socket failure once or twice, and a bound keeps a cyclic or hostile chain from looping.
const MAX_DEPTH = 4;

export function* causeChain(error: unknown): Generator<Error> {
  let e = error;
  for (let depth = 0; e instanceof Error && depth < MAX_DEPTH; depth++) {
    yield e;
    e = e.cause;
  }
}
