/**
 * Builds on first use and hands out the same value afterwards. A deployed function's cold start pays only
 * for what its first request uses: a schema of Wise's answers, for one, is never built by a function
 * instance whose vends are all served from the store.
 */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
