import { describe, expect, it } from 'vitest';
import { once } from '#shared/once.ts';

describe('once', () => {
  it('builds on first use and hands out the same value afterwards', () => {
    let builds = 0;
    const source = once(() => ({ build: ++builds }));

    expect(builds).toBe(0);
    const first = source();
    expect(source()).toBe(first);
    expect(builds).toBe(1);
  });
});
