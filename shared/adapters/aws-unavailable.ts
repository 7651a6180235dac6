import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import type { InitializeHandler, MetadataBearer, MiddlewareStack, SdkError } from '@smithy/types';
import { type AwsDependency, DependencyUnavailableError } from '#shared/domain/errors.ts';

/**
 * Whether an AWS SDK error says its service is unavailable for now, by the SDK's own classification (the
 * one its retries use): throttling, a timeout, a network error, or a fault on the service's side (5xx).
 * A conditional-check failure, a validation error, an access denied or a ciphertext KMS refuses is none of
 * these: it is an answer, and stays what it is.
 */
export function isDependencyUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const sdkError = error as SdkError;
  return isThrottlingError(sdkError) || isTransientError(sdkError) || isServerError(sdkError);
}

/**
 * Makes every request of an AWS SDK client that fails as unavailable (see {@link isDependencyUnavailable})
 * beyond the SDK's own retries throw a {@link DependencyUnavailableError} naming `dependency`, with the
 * SDK's error as its cause; any other error passes unchanged. The middleware sits at the start of the
 * client's stack, above its retries, so it sees only what they gave up on. Adding it twice replaces it.
 */
export function reportUnavailable<Input extends object, Output extends MetadataBearer>(
  client: { middlewareStack: MiddlewareStack<Input, Output> },
  dependency: AwsDependency,
): void {
  client.middlewareStack.add(
    (next: InitializeHandler<Input, Output>) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (isDependencyUnavailable(error))
          throw new DependencyUnavailableError(dependency, { cause: error });
        throw error;
      }
    },
    { step: 'initialize', name: 'brokerDependencyUnavailable', override: true },
  );
}
