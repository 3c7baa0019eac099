// What a composition root has started, closed newest first: by a start that fails part-way and by close() alike, so
// the two never disagree on what to close or in which order. A part that fails to close does not keep the parts
// started before it open. Holds closers only: it starts nothing and decides no order but the push order.

/** Closes one started part; `deadline` (ms since epoch) bounds what may drain. */
export type Closer = (deadline: number) => unknown;

export class CloseStack {
  readonly #closers: Closer[] = [];

  /** A part that is now running: closed before every part pushed before it. */
  push(close: Closer): void {
    this.#closers.push(close);
  }

  /** Closes every part pushed, newest first, each once; resolves to the errors of the parts that failed to close. */
  async unwind(deadline: number): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (let close = this.#closers.pop(); close !== undefined; close = this.#closers.pop()) {
      try {
        await close(deadline);
      } catch (error) {
        errors.push(error);
      }
    }
    return errors;
  }
}
