// The message of anything thrown, for a log line or an answer: an Error's message, anything else as a string. Pure.

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
