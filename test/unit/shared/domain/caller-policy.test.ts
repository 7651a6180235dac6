import { describe, expect, it } from 'vitest';
import { CallerPolicy, connectionPatternMatches, principalIdentity } from '#shared/domain/caller-policy.ts';
import { BrokerError, ForbiddenError } from '#shared/domain/errors.ts';

const PAYMENTS = 'arn:aws:iam::123456789012:role/payments';
const PAYMENTS_SESSION = 'arn:aws:sts::123456789012:assumed-role/payments/i-0abc';
const OPERATOR = 'arn:aws:iam::123456789012:role/ops/operator';
const OPERATOR_SESSION = 'arn:aws:sts::123456789012:assumed-role/operator/alice';
const CI_USER = 'arn:aws:iam::123456789012:user/ci-bot';
const MIGRATION = 'arn:aws:iam::123456789012:role/migration';

const policy = new CallerPolicy([
  { principal: PAYMENTS, use: ['acme-*'], clientToken: true },
  { principal: PAYMENTS, use: ['beta:eu-*'] },
  { principal: OPERATOR, administer: ['acme-*', 'gamma-1'] },
  { principal: CI_USER, use: ['ci-*-test'] },
  { principal: MIGRATION, import: ['acme-*'] },
]);

describe('principalIdentity', () => {
  it('reads an assumed-role session ARN as its role', () => {
    expect(principalIdentity(PAYMENTS_SESSION)).toEqual({
      partition: 'aws',
      account: '123456789012',
      kind: 'role',
      name: 'payments',
    });
  });

  it('reads a role ARN with a path by its name', () => {
    expect(principalIdentity(OPERATOR)).toMatchObject({ kind: 'role', name: 'operator' });
  });

  it.each([
    'payments',
    'arn:aws:iam::123456789012:group/payments',
    'arn:aws:sts::123456789012:federated-user/x',
  ])('does not read %s', (arn) => {
    expect(principalIdentity(arn)).toBeUndefined();
  });
});

describe('connectionPatternMatches', () => {
  it.each([
    ['acme-1', 'acme-1', true],
    ['acme-1', 'acme-10', false],
    ['acme-*', 'acme-', true],
    ['*-eu', 'acme-eu', true],
    ['a*x*b', 'axb', true],
    ['a*x*b', 'a-x-x-b', true],
    ['a*x*y*b', 'a1x2y3b', true],
    ['a*x*y*b', 'a1y2x3b', false],
    ['a*x*b', 'azzb', false],
    ['a*x*x*b', 'a-x-b', false],
    ['a*b*b', 'ab', false],
    ['a*ab*b', 'ab', false],
    ['ab*ba', 'aba', false],
    ['a*a', 'a', false],
  ])('%s covers %s: %s', (pattern, connectionId, covers) => {
    expect(connectionPatternMatches(pattern, connectionId)).toBe(covers);
  });
});

describe('CallerPolicy', () => {
  it('lets the session of a configured role use the connections its patterns cover', () => {
    expect(policy.mayUseConnection(PAYMENTS_SESSION, 'acme-42')).toBe(true);
    expect(policy.mayUseConnection(PAYMENTS_SESSION, 'beta:eu-7')).toBe(true);
    expect(policy.mayUseConnection(PAYMENTS_SESSION, 'beta:us-7')).toBe(false);
  });

  it('matches a role configured with a path from its session ARN, which has no path', () => {
    expect(policy.mayAdminister(OPERATOR_SESSION, 'gamma-1')).toBe(true);
  });

  it('matches users by their ARN and patterns with a star in the middle', () => {
    expect(policy.mayUseConnection(CI_USER, 'ci-42-test')).toBe(true);
    expect(policy.mayUseConnection(CI_USER, 'ci-42-prod')).toBe(false);
  });

  it('refuses a role of the same name in another account', () => {
    expect(policy.mayUseConnection('arn:aws:sts::999999999999:assumed-role/payments/x', 'acme-1')).toBe(
      false,
    );
  });

  it('refuses a role or user of the same account and name in another partition, or of the other kind', () => {
    const mixed = new CallerPolicy([
      { principal: 'arn:aws:iam::123456789012:role/ci-bot', use: ['acme-*'] },
      { principal: 'arn:aws-cn:iam::123456789012:user/payments', use: ['beta-*'] },
    ]);

    expect(mixed.mayUseConnection(CI_USER, 'acme-1')).toBe(false);
    expect(mixed.mayUseConnection('arn:aws:iam::123456789012:role/ci-bot', 'acme-1')).toBe(true);
    expect(mixed.mayUseConnection('arn:aws:iam::123456789012:user/payments', 'beta-1')).toBe(false);
    expect(mixed.mayUseConnection('arn:aws-cn:iam::123456789012:user/payments', 'beta-1')).toBe(true);
  });

  it('lets through the caller that holds the client token or administer patterns', () => {
    expect(policy.isAdmin(OPERATOR_SESSION)).toBe(true);
    expect(() => policy.assertIsAdmin(OPERATOR_SESSION)).not.toThrow();
    expect(() => policy.assertMayUseClientToken(PAYMENTS_SESSION)).not.toThrow();
  });

  it('keeps the client token and administration apart from use', () => {
    expect(policy.mayUseClientToken(PAYMENTS_SESSION)).toBe(true);
    expect(policy.mayUseClientToken(OPERATOR_SESSION)).toBe(false);
    expect(policy.isAdmin(PAYMENTS_SESSION)).toBe(false);
    expect(policy.mayAdminister(PAYMENTS_SESSION, 'acme-1')).toBe(false);
    expect(policy.mayAdminister(OPERATOR_SESSION, 'beta:eu-1')).toBe(false);
  });

  it('does not let a caller that administers a connection use it', () => {
    expect(policy.mayAdminister(OPERATOR_SESSION, 'acme-1')).toBe(true);
    expect(policy.mayUseConnection(OPERATOR_SESSION, 'acme-1')).toBe(false);
    expect(() => policy.assertMayUseConnection(OPERATOR_SESSION, 'acme-1')).toThrow(ForbiddenError);
  });

  it('holds each grant with its own patterns when one principal has both', () => {
    const both = new CallerPolicy([
      { principal: PAYMENTS, use: ['acme-*'], administer: ['acme-eu-*'] },
      { principal: PAYMENTS, administer: ['beta-*'] },
    ]);

    expect(both.mayUseConnection(PAYMENTS_SESSION, 'acme-us-1')).toBe(true);
    expect(both.mayAdminister(PAYMENTS_SESSION, 'acme-us-1')).toBe(false);
    expect(both.mayAdminister(PAYMENTS_SESSION, 'acme-eu-1')).toBe(true);
    expect(both.mayUseConnection(PAYMENTS_SESSION, 'beta-1')).toBe(false);
    expect(both.patternsFor(PAYMENTS_SESSION, 'administer')).toEqual(['acme-eu-*', 'beta-*']);
    expect(both.patternsFor(PAYMENTS_SESSION, 'use')).toEqual(['acme-*']);
  });

  it('says who was refused, for what and which grant is missing, in a ForbiddenError', () => {
    expect(() => policy.assertMayUseConnection(PAYMENTS_SESSION, 'gamma-1')).toThrow(ForbiddenError);
    expect(() => policy.assertMayUseConnection(PAYMENTS_SESSION, 'gamma-1')).toThrow(
      `${PAYMENTS_SESSION} may not create connect sessions and registrations for, or vend the token of, connection "gamma-1"; the broker's caller policy must cover it with one of this caller's "use" patterns.`,
    );
    expect(() => policy.assertMayAdminister(PAYMENTS_SESSION, 'acme-1')).toThrow(
      `${PAYMENTS_SESSION} may not list, read the status of or delete connection "acme-1"; the broker's caller policy must cover it with one of this caller's "administer" patterns.`,
    );
    expect(() => policy.assertMayUseClientToken(OPERATOR_SESSION)).toThrow(ForbiddenError);
    expect(() => policy.assertMayUseClientToken(OPERATOR_SESSION)).toThrow(
      `${OPERATOR_SESSION} may not use the client-credentials token; the broker's caller policy must set clientToken for it.`,
    );
    expect(() => policy.assertIsAdmin(PAYMENTS_SESSION)).toThrow(/"administer" patterns/);
    expect(() => policy.assertMayAdminister(OPERATOR_SESSION, 'acme-1')).not.toThrow();
  });

  it('refuses an unknown or malformed caller ARN', () => {
    expect(policy.mayUseConnection('not-an-arn', 'acme-1')).toBe(false);
    expect(policy.rulesFor('arn:aws:iam::123456789012:role/unknown')).toEqual([]);
  });

  it('fails at construction on a principal that is not an IAM role or user ARN', () => {
    expect(
      () => new CallerPolicy([{ principal: 'arn:aws:iam::123456789012:role/payments/', use: ['acme-*'] }]),
    ).toThrow(BrokerError);
    expect(() => new CallerPolicy([{ principal: 'payments', use: ['acme-*'] }])).toThrow(
      'The caller policy names "payments", which is not an IAM role or user ARN such as arn:aws:iam::123456789012:role/payments.',
    );
  });
});

describe('the import grant', () => {
  it('lets an importer import only the connections its import patterns cover', () => {
    expect(policy.allows(MIGRATION, 'import', 'acme-7')).toBe(true);
    expect(policy.allows(MIGRATION, 'import', 'beta:eu-1')).toBe(false);
  });

  it('stands apart from use and administration, both ways', () => {
    expect(policy.mayUseConnection(MIGRATION, 'acme-7')).toBe(false);
    expect(policy.mayAdminister(MIGRATION, 'acme-7')).toBe(false);
    expect(policy.isAdmin(MIGRATION)).toBe(false);
    expect(policy.allows(PAYMENTS_SESSION, 'import', 'acme-7')).toBe(false);
    expect(policy.allows(OPERATOR_SESSION, 'import', 'acme-7')).toBe(false);
  });

  it('refuses an importer with a sentence naming the grant it lacks', () => {
    expect(() => policy.assertAllows(PAYMENTS_SESSION, 'import', 'acme-7')).toThrow(
      `${PAYMENTS_SESSION} may not import an existing Wise authorization, with its refresh token, into connection "acme-7"; the broker's caller policy must cover it with one of this caller's "import" patterns.`,
    );
  });
});
