import type { InitializeMiddleware, MetadataBearer } from '@smithy/types';
import type { AwsClients } from '#shared/runtime/runtime.ts';

/**
 * Counts the AWS calls the broker's SDK clients make, by service and operation, through a middleware added
 * to each client: what a benchmark asserts about a path ("a warm vend makes no AWS call").
 */
export class AwsCallCounter {
  readonly #counts = new Map<string, number>();

  /** Adds the counting middleware to every client. */
  constructor(clients: AwsClients) {
    const count: InitializeMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
      const service = String(context.clientName).replace(/Client$/, '');
      const name = `${service}.${String(context.commandName).replace(/Command$/, '')}`;
      this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
      return next(args);
    };
    for (const client of Object.values(clients) as AwsClients[keyof AwsClients][]) {
      (client.middlewareStack as { add: (m: typeof count, o: object) => void }).add(count, {
        step: 'initialize',
        name: 'benchAwsCallCounter',
        override: true,
      });
    }
  }

  reset(): void {
    this.#counts.clear();
  }

  /** Calls since the last reset, such as `{"DynamoDB.GetItem": 1, "KMS.Decrypt": 1}`. */
  byOperation(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort());
  }

  total(prefix = ''): number {
    let sum = 0;
    for (const [name, count] of this.#counts) if (name.startsWith(prefix)) sum += count;
    return sum;
  }
}
