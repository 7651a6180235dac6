import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { logger } from '#shared/observability.ts';
import {
  composedAtInit,
  functionConfig,
  InvalidSettingError,
  MissingSettingError,
  settingsFromEnvironment,
} from '#shared/runtime/function-environment.ts';
import { commonEnvironment } from '../../../../infra/broker-function.ts';

const CALLER = 'arn:aws:iam::123456789012:role/payments';

/** The variables the stack gives every function, from a configuration validated as at synth. */
function stackEnvironment(): Record<string, string> {
  return commonEnvironment({
    config: parseBrokerConfig(
      { stage: 'test', callers: [{ principal: CALLER, use: ['acme-*'] }], refresh: { shards: 2 } },
      'the test',
    ),
    redirectUri: 'https://broker.example.com/oauth/callback',
    tableName: 'wise-broker-test',
    keyArn: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000',
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:wise',
    eventBusName: 'wise-broker-test',
  });
}

describe('settingsFromEnvironment', () => {
  it('reads the configuration the stack wrote, with the defaults it filled in', () => {
    const settings = settingsFromEnvironment(stackEnvironment());

    expect(settings.config.stage).toBe('test');
    expect(settings.config.callers[0]?.use).toEqual(['acme-*']);
    expect(settings.config.refresh.shards).toBe(2);
    expect(settings.config.refresh.fraction).toBe(0.8);
    expect(settings.config.wise.apiUrl).toBe('https://api.wise-sandbox.com');
    expect(settings).toMatchObject({
      redirectUri: 'https://broker.example.com/oauth/callback',
      tableName: 'wise-broker-test',
      eventBusName: 'wise-broker-test',
    });
  });

  it('fails fast, naming the variable, when one the stack sets is missing', () => {
    const { TABLE_NAME: _missing, ...environment } = stackEnvironment();

    expect(() => settingsFromEnvironment(environment)).toThrow(MissingSettingError);
    expect(() => settingsFromEnvironment(environment)).toThrow(/TABLE_NAME is not set/);
  });
});

describe('functionConfig', () => {
  it('refuses a BROKER_CONFIG that is not JSON', () => {
    expect(() => functionConfig({ BROKER_CONFIG: '{"stage":' })).toThrow(InvalidSettingError);
    expect(() => functionConfig({ BROKER_CONFIG: '{"stage":' })).toThrow(/is not JSON/);
  });

  it('names each field a function reads that is missing or of the wrong type', () => {
    const { callers: _callers, ...config } = JSON.parse(stackEnvironment().BROKER_CONFIG ?? '{}');

    const read = () => functionConfig({ BROKER_CONFIG: JSON.stringify({ ...config, refresh: null }) });

    expect(read).toThrow(InvalidSettingError);
    expect(read).toThrow(/\(callers, refresh missing or of the wrong type\)/);
  });

  it('refuses JSON that is not an object', () => {
    expect(() => functionConfig({ BROKER_CONFIG: '[]' })).toThrow(/stage, wise, callers/);
  });
});

describe('composedAtInit', () => {
  const LAMBDA = { AWS_LAMBDA_FUNCTION_NAME: 'wise-broker-test-tokens' };
  afterEach(() => vi.restoreAllMocks());

  it('builds the composition when Lambda loads the function, before any request', () => {
    let builds = 0;
    const composition = composedAtInit(() => ({ build: ++builds }), LAMBDA);

    expect(builds).toBe(1);
    expect(composition()).toEqual({ build: 1 });
    expect(builds).toBe(1);
  });

  it('builds on first use outside Lambda, such as in a test importing a handler', () => {
    let builds = 0;
    const composition = composedAtInit(() => ({ build: ++builds }), {});

    expect(builds).toBe(0);
    composition();
    expect(builds).toBe(1);
  });

  it('logs a composition that fails at init, and each request meets the same error', () => {
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    let builds = 0;
    const composition = composedAtInit(() => {
      builds += 1;
      return settingsFromEnvironment({});
    }, LAMBDA);

    expect(builds).toBe(1);
    expect(error).toHaveBeenCalledWith(
      'The function could not build its parts at init; each request will fail the same way.',
      { error: expect.stringContaining('The environment variable BROKER_CONFIG is not set') },
    );
    expect(() => composition()).toThrow(MissingSettingError);
    expect(() => composition()).toThrow(MissingSettingError);
    expect(builds).toBe(3);
  });
});
