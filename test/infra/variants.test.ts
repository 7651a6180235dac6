import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT, buildApp, NO_BUNDLING, REGION, removeOutdirs, TEST_CONTEXT } from './support.ts';

const PRIVATE = { privateAccess: { vpcEndpointIds: ['vpce-0123456789abcdef0'] } };
const DOMAIN = {
  domain: {
    name: 'wise.example.com',
    hostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'example.com' },
    certificateArn: `arn:aws:acm:${REGION}:${ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0`,
  },
};
const EXISTING_TABLE = { existingTableName: 'wise-broker-test-restored-2026-12-01' };

const VARIANTS: [string, Record<string, unknown>][] = [
  ['public access', {}],
  ['private access', PRIVATE],
  ['a custom domain', DOMAIN],
  ['an existing table', EXISTING_TABLE],
  [
    'private access, a custom domain and an existing table together',
    { ...PRIVATE, ...DOMAIN, ...EXISTING_TABLE },
  ],
];

describe('every deployment variant', () => {
  const deprecated = process.env.JSII_DEPRECATED;

  // A deprecated CDK API then throws instead of printing a warning during synth.
  beforeAll(() => {
    process.env.JSII_DEPRECATED = 'fail';
  });
  afterAll(() => {
    if (deprecated === undefined) delete process.env.JSII_DEPRECATED;
    else process.env.JSII_DEPRECATED = deprecated;
    removeOutdirs();
  });

  it.each(VARIANTS)(
    'synthesizes %s with no deprecated CDK API and nothing unacknowledged by cdk-nag',
    (_name, variant) => {
      const { app } = buildApp({ ...TEST_CONTEXT, ...variant, ...NO_BUNDLING });

      expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
    },
  );
});
