export { startGateway } from './gateway.ts';
export type {
  GatewayExchange,
  GatewayLogger,
  GatewayMethod,
  GatewayObserver,
  GatewayOptions,
  GatewayResult,
  GatewayRoute,
  IamGatewayRoute,
  LocalCredential,
  PublicGatewayRoute,
  RunningGateway,
} from './types.ts';
