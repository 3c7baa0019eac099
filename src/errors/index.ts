export { causeChain } from './cause-chain.js';
export { errorMessage } from './error-message.js';
export { isMeshauthError, MeshauthError, type MeshauthErrorOptions } from './meshauth-error.js';
export { ERRORS, type ErrorCode, type ErrorSpec, isErrorCode } from './registry.js';
