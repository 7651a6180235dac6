export { BrokerClient, type BrokerClientOptions } from './broker-client.ts';
export { BrokerClientError } from './errors.ts';
export type {
  ConnectionStatus,
  ConnectSession,
  GetTokenOptions,
  TokenTarget,
  VendedToken,
} from './types.ts';
