import { describe, expect, it } from 'vitest';
import { ConfigurationError, parseBrokerConfig } from '#shared/config/broker-config.ts';

const bridge = 'arn:aws:iam::123456789012:role/partners/payments-service-caller';
const service = 'arn:aws:iam::210987654321:role/payments-service';

function problemsOf(input: unknown): Record<string, string> {
  try {
    parseBrokerConfig(input, 'test.json');
  } catch (error) {
    if (error instanceof ConfigurationError) {
      return Object.fromEntries(error.problems.map(({ path, message }) => [path, message]));
    }
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('privateAccess', () => {
  it('is left out by default: the broker is public', () => {
    expect(parseBrokerConfig({}, 'test.json').privateAccess).toBeUndefined();
  });

  it('keeps the VPC endpoints and the Organization as written', () => {
    const config = parseBrokerConfig(
      { privateAccess: { vpcEndpointIds: ['vpce-0123456789abcdef0'], organizationId: 'o-a1b2c3d4e5' } },
      'test.json',
    );

    expect(config.privateAccess).toEqual({
      vpcEndpointIds: ['vpce-0123456789abcdef0'],
      organizationId: 'o-a1b2c3d4e5',
    });
  });

  it('refuses no endpoint, an endpoint that is not a VPC endpoint id and a malformed Organization id', () => {
    expect(problemsOf({ privateAccess: { vpcEndpointIds: [] } })).toEqual({
      'privateAccess.vpcEndpointIds': 'must name at least one interface VPC endpoint for execute-api',
    });
    expect(
      problemsOf({ privateAccess: { vpcEndpointIds: ['vpc-0123456789abcdef0'], organizationId: 'r-abcd' } }),
    ).toEqual({
      'privateAccess.vpcEndpointIds[0]':
        'must be an interface VPC endpoint id such as "vpce-0123456789abcdef0"',
      'privateAccess.organizationId': 'must be an AWS Organizations id such as "o-a1b2c3d4e5"',
    });
    expect(problemsOf({ privateAccess: {} })).toEqual({
      'privateAccess.vpcEndpointIds':
        'is required and must be a list of the interface VPC endpoint ids (execute-api) that may reach the broker',
    });
  });
});

describe('callers[].assumableBy', () => {
  it("keeps the principals that may assume a caller's role, and is absent when not given", () => {
    const config = parseBrokerConfig(
      {
        callers: [
          { principal: bridge, use: ['partner-*'], assumableBy: [service] },
          { principal: bridge, clientToken: true },
        ],
      },
      'test.json',
    );

    expect(config.callers[0]?.assumableBy).toEqual([service]);
    expect(config.callers[1]).not.toHaveProperty('assumableBy');
  });

  it('refuses it on a user, an empty list and an entry that is no role or user ARN', () => {
    expect(
      problemsOf({
        callers: [
          { principal: 'arn:aws:iam::123456789012:user/ops', use: ['*'], assumableBy: [service] },
          { principal: bridge, use: ['*'], assumableBy: [] },
          { principal: bridge, use: ['*'], assumableBy: ['arn:aws:sts::210987654321:assumed-role/x/y'] },
        ],
      }),
    ).toEqual({
      'callers[0].assumableBy':
        'needs "principal" to be a role ARN of the deployment\'s account: the role the deployment creates for these principals to assume',
      'callers[1].assumableBy': 'must name at least one principal, or be left out',
      'callers[2].assumableBy[0]':
        'must be the IAM role or user ARN of the service that assumes this role, such as "arn:aws:iam::210987654321:role/payments"',
    });
  });
});
