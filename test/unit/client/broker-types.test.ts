import { describe, expectTypeOf, it } from 'vitest';
import type { ConnectionStatusView } from '#shared/use-cases/connection-status.ts';
import type { VendedToken as BrokerVendedToken } from '#shared/use-cases/vend-token.ts';
import type { ConnectionStatus, VendedToken } from '../../../client/index.ts';

// The client package carries its own copy of the response types, so that it needs none of the broker's
// code. These checks run in `tsc --noEmit`: a change to either side that the other does not follow fails
// the type check.
describe('the client package types', () => {
  it('are the broker answer types of POST /tokens', () => {
    expectTypeOf<VendedToken>().toEqualTypeOf<BrokerVendedToken>();
  });

  it('are the broker answer types of GET /connections/{id}', () => {
    expectTypeOf<ConnectionStatus>().toEqualTypeOf<ConnectionStatusView>();
  });
});
