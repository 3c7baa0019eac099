// What meshauth relies on from Node itself (and undici) beyond its public API: one place to check on an upgrade.
export { pendingResponse, startTimeoutSweeper, UNDICI_CODES, UNDICI_PARSER_ERROR_NAME } from './node-internals.js';
