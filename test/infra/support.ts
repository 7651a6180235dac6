import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppProps, CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';
import { ConfigurationError } from '#shared/config/broker-config.ts';
import { createBrokerApp } from '../../infra/broker-app.ts';
import type { BrokerFunction } from '../../infra/broker-function.ts';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';

/**
 * A configuration with callers of every grant alone and together (a role with use and the client token, a
 * user that only administers, a role with only the client token, a role that both uses and administers, a
 * role that only imports), and one caller from another account.
 */
export const TEST_CONTEXT = {
  stage: 'test',
  env: { account: ACCOUNT, region: REGION },
  callers: [
    { principal: `arn:aws:iam::${ACCOUNT}:role/teams/payments`, use: ['acme-*'], clientToken: true },
    { principal: `arn:aws:iam::${ACCOUNT}:user/ops`, administer: ['*'] },
    { principal: `arn:aws:iam::${ACCOUNT}:role/quotes`, clientToken: true },
    { principal: `arn:aws:iam::${ACCOUNT}:role/support`, use: ['help-*'], administer: ['help-*'] },
    { principal: `arn:aws:iam::${ACCOUNT}:role/migration`, import: ['acme-*'] },
    { principal: 'arn:aws:iam::999999999999:role/partner', clientToken: true },
  ],
  alarmEmail: 'ops@example.com',
};

/** Context that makes the CDK skip asset bundling, for tests about configuration rather than code. */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

const outdirs: string[] = [];

/** Builds the broker app into a temporary folder; {@link removeOutdirs} deletes them all. */
export function buildApp(context: Record<string, unknown>, props: AppProps = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'broker-cdk-'));
  outdirs.push(outdir);
  return createBrokerApp({ ...props, outdir, context });
}

/** The warnings `cdk synth` prints for the stateless stack of a built app. */
export function statelessWarnings(built: ReturnType<typeof createBrokerApp>): string[] {
  return built.app
    .synth()
    .getStackArtifact(built.stateless.artifactId)
    .messages.filter((message) => message.level === 'warning')
    .map((message) => String(message.entry.data));
}

export function removeOutdirs(): void {
  for (const outdir of outdirs.splice(0)) rmSync(outdir, { recursive: true, force: true });
}

/**
 * Turns a CloudFormation value into a short readable label, so a test can say "the table" instead of the
 * exact shape of a cross-stack import.
 */
export function label(value: unknown): string {
  if (typeof value === 'string') return value;
  const text = JSON.stringify(value);
  const index = /\/index\/([\w-]+)/.exec(text);
  if (text.includes('Table') && index) return `table/index/${index[1]}`;
  if (text.includes('ImportValue') && text.includes('Table') && text.includes('Arn')) return 'table';
  if (text.includes('ImportValue') && text.includes('Table')) return 'table name';
  if (text.includes('ImportValue') && text.includes('WiseCredentials')) return 'secret';
  if (text.includes('ImportValue') && text.includes('TokenKey')) return 'token key';
  if (text.includes('ImportValue') && text.includes('Key')) return 'key';
  if (text.includes('EventBus') && text.includes('Arn')) return 'event bus';
  if (text.includes('EventBus')) return 'event bus name';
  if (text.includes('Logs') && text.includes('Arn')) return 'log group';
  if (text.includes('ApiEndpoint')) return text.replace(/.*ApiEndpoint"\]\},"([^"]*)".*/, 'api endpoint$1');
  const route = /"([^"]*)"\]\]\}$/.exec(text);
  if (text.includes('execute-api') && route) return `api${route[1]}`;
  return text;
}

export interface Statement {
  actions: string[];
  resources: string[];
  conditions?: Record<string, Record<string, string | string[]>>;
}

/** A policy document's statements with labelled resources and condition values, actions sorted. */
export function statements(document: { Statement: Record<string, unknown>[] }): Statement[] {
  return document.Statement.map((statement) => {
    expect(statement.Effect).toBe('Allow');
    const actions = [statement.Action].flat() as string[];
    const resources = [statement.Resource].flat().map(label);
    const result: Statement = { actions: [...actions].sort(), resources };
    if (statement.Condition) {
      const conditions = statement.Condition as Record<string, Record<string, unknown>>;
      result.conditions = Object.fromEntries(
        Object.entries(conditions).map(([operator, values]) => [
          operator,
          Object.fromEntries(
            Object.entries(values).map(([key, value]) => [
              key,
              Array.isArray(value) ? value.map(label) : label(value),
            ]),
          ),
        ]),
      );
    }
    return result;
  });
}

/** The ConfigurationError that `action` throws; any other outcome fails the test. */
export function configurationErrorOf(action: () => unknown): ConfigurationError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('no ConfigurationError was thrown');
}

/** The environment variables of one broker function of the stateless stack, by the function's name. */
export function variablesOf(stack: Stack, name: string): Record<string, unknown> {
  const fn = (stack as Stack & { functions: Record<string, BrokerFunction> }).functions[name]?.function;
  const id = stack.getLogicalId(fn?.node.defaultChild as CfnElement);
  const properties = Template.fromStack(stack).findResources('AWS::Lambda::Function')[id]?.Properties;
  return properties.Environment.Variables;
}
