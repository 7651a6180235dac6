import type { CfnElement, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '#shared/config/broker-config.ts';
import type { BrokerFunction } from '../../infra/broker-function.ts';
import { ACCOUNT, buildApp, NO_BUNDLING, REGION, removeOutdirs, TEST_CONTEXT } from './support.ts';

afterAll(removeOutdirs);

// biome-ignore lint/suspicious/noExplicitAny: assertions walk the synthesized template's JSON freely.
type TemplateValue = any;

const RESTORED = 'wise-broker-test-restored-2026-12-01';

function functionOf(stack: Stack, name: string): Record<string, TemplateValue> {
  const fn = (stack as Stack & { functions: Record<string, BrokerFunction> }).functions[name]?.function;
  const id = stack.getLogicalId(fn?.node.defaultChild as CfnElement);
  return Template.fromStack(stack).findResources('AWS::Lambda::Function')[id]?.Properties;
}

/** Every statement of every policy of the stack that names DynamoDB actions. */
function tableStatements(stack: Stack): Record<string, TemplateValue>[] {
  return Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy')).flatMap((policy) =>
    (policy.Properties.PolicyDocument.Statement as Record<string, TemplateValue>[]).filter((statement) =>
      [statement.Action].flat().some((action: string) => action.startsWith('dynamodb:')),
    ),
  );
}

describe('a table restored from point-in-time recovery (existingTableName)', () => {
  const restored = buildApp({ ...TEST_CONTEXT, existingTableName: RESTORED, ...NO_BUNDLING });
  const created = buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING });

  it('creates no table in the stateful stack, and keeps the keys, the secret and the audit log group', () => {
    const template = Template.fromStack(restored.stateful);

    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    template.resourceCountIs('AWS::KMS::Key', 2);
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    template.hasOutput('TableName', { Value: RESTORED });
    Template.fromStack(created.stateful).resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
  });

  it('gives every function the restored table by name', () => {
    for (const name of ['tokens', 'refresh', 'connections', 'connect-sessions']) {
      expect(functionOf(restored.stateless, name).Environment.Variables.TABLE_NAME, name).toBe(RESTORED);
    }
  });

  it("limits every table grant to the restored table's ARN and its indexes, with the same LeadingKeys", () => {
    const restoredStatements = tableStatements(restored.stateless);
    const createdStatements = tableStatements(created.stateless);

    expect(restoredStatements.length).toBeGreaterThan(0);
    expect(restoredStatements.map((statement) => statement.Condition ?? null)).toEqual(
      createdStatements.map((statement) => statement.Condition ?? null),
    );
    for (const statement of restoredStatements) {
      for (const resource of [statement.Resource].flat()) {
        const text = JSON.stringify(resource);
        expect(text).toContain(`:dynamodb:${REGION}:${ACCOUNT}:table/${RESTORED}`);
        expect(text).not.toContain('ImportValue');
      }
    }
    const indexes = restoredStatements
      .flatMap((statement) => [statement.Resource].flat())
      .map((resource) => JSON.stringify(resource))
      .filter((text) => text.includes('/index/'));
    expect(indexes.some((text) => text.includes(`table/${RESTORED}/index/refresh-due`))).toBe(true);
  });

  it('still lets the functions use the data key only through DynamoDB', () => {
    const kms = Object.values(Template.fromStack(restored.stateless).findResources('AWS::IAM::Policy'))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Record<string, TemplateValue>[])
      .filter((statement) => JSON.stringify(statement.Condition ?? {}).includes('dynamodb.'));

    expect(kms.length).toBeGreaterThan(0);
    for (const statement of kms) {
      expect(JSON.stringify(statement.Resource)).toMatch(/ImportValue.*Key/);
      expect(statement.Condition).toEqual({
        StringEquals: { 'kms:ViaService': `dynamodb.${REGION}.amazonaws.com` },
      });
    }
  });

  it('passes the cdk-nag AwsSolutions checks', () => {
    expect(new AwsSolutionsChecks().validateScope(restored.app).violations).toEqual([]);
  });

  it('refuses a name DynamoDB would not accept, saying what a table name is', () => {
    let error: unknown;
    try {
      buildApp({ ...TEST_CONTEXT, existingTableName: 'no', ...NO_BUNDLING });
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).problems).toEqual([
      { path: 'existingTableName', message: expect.stringContaining('3 to 255 letters') },
    ]);
  });
});

describe('the API URL for callers', () => {
  it('is written to the SSM parameter /wise-broker/<stage>/api-url and output by name', () => {
    const { stateless } = buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING });
    const template = Template.fromStack(stateless);
    const apiId = stateless.getLogicalId(stateless.api.node.defaultChild as CfnElement);

    template.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/wise-broker/test/api-url',
      Type: 'String',
      Value: { 'Fn::GetAtt': [apiId, 'ApiEndpoint'] },
    });
    template.hasOutput('ApiUrlParameterName', { Value: { Ref: Match.stringLikeRegexp('ApiUrlParameter') } });
  });
});
