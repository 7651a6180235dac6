export { startGateway } from './gateway.ts';
export type {
  GatewayLogger,
  GatewayMethod,
  GatewayOptions,
  GatewayResult,
  GatewayRoute,
  IamGatewayRoute,
  LocalCredential,
  PublicGatewayRoute,
  RunningGateway,
} from './types.ts';
