export { type GatewayDependencies, type RunningGateway, startGateway } from './gateway.js';
export { type GatewayConfig, type GatewayRoute, resolveGatewayConfig } from './gateway-config.js';
export { gatewaySchema } from './gateway-schema.js';
export { gatewayConfigFromObject, loadGatewayConfig } from './load-gateway-config.js';
