import { describe, expect, it } from 'vitest';
import type { CloudAssembly, TemplateResource } from '../../../rehearsal/assembly.ts';
import { metricCoverage, metricsInOutput } from '../../../rehearsal/metric-coverage.ts';
import { UNEMITTED_METRIC_REASONS } from '../../../rehearsal/unemitted-metrics.ts';

const EMITTERS = [{ function: 'refresh', namespace: 'WiseTokenBroker', service: 'wise-broker-prod' }];

function assembly(resources: Record<string, TemplateResource>): CloudAssembly {
  return {
    dir: '/nowhere',
    stacks: [
      {
        name: 'WiseBroker-prod-Stateless',
        account: '123456789012',
        region: 'eu-west-1',
        template: { Resources: resources },
        assetsByObjectKey: new Map(),
      },
    ],
  };
}

function alarm(name: string, metric: Record<string, unknown>): TemplateResource {
  return { Type: 'AWS::CloudWatch::Alarm', Properties: { AlarmName: name, ...metric } };
}

/** An EMF line as Powertools writes it: one directive, the service dimension, one value. */
function emf(name: string, dimensions: Record<string, string> = {}): string {
  const all = { service: 'wise-broker-prod', ...dimensions };
  return JSON.stringify({
    _aws: {
      Timestamp: 0,
      CloudWatchMetrics: [
        {
          Namespace: 'WiseTokenBroker',
          Dimensions: [Object.keys(all)],
          Metrics: [{ Name: name, Unit: 'Count' }],
        },
      ],
    },
    ...all,
    [name]: 1,
  });
}

const refreshFailedAlarm = (overrides: Record<string, unknown> = {}) =>
  alarm('wise-broker-prod-RefreshFailing', {
    Namespace: 'WiseTokenBroker',
    MetricName: 'RefreshFailed',
    Dimensions: [{ Name: 'service', Value: 'wise-broker-prod' }],
    ...overrides,
  });

const dashboard: TemplateResource = {
  Type: 'AWS::CloudWatch::Dashboard',
  Properties: {
    DashboardName: 'wise-broker-prod',
    DashboardBody: {
      'Fn::Join': [
        '',
        [
          '{"widgets":[{"type":"metric","properties":{"title":"Tokens","metrics":[["WiseTokenBroker","RefreshFailed","service","wise-broker-prod"],["AWS/Lambda","Errors","FunctionName","',
          { Ref: 'refreshFunction' },
          '"],[{"expression":"s / (s + f)","label":"ratio"}]]}}]}',
        ],
      ],
    },
  },
};

function check(resources: Record<string, TemplateResource>, lines: string[]) {
  return metricCoverage({
    assembly: assembly({
      refreshFunction: { Type: 'AWS::Lambda::Function' },
      Dashboard: dashboard,
      ...resources,
    }),
    emitted: [{ function: 'refresh', metrics: metricsInOutput(lines) }],
    emitters: EMITTERS,
    reasons: UNEMITTED_METRIC_REASONS,
  });
}

describe('metricsInOutput', () => {
  it('reads each metric of an EMF line with the dimension values the line gives, and skips other lines', () => {
    const metrics = metricsInOutput([
      '{"level":"INFO","message":"Refreshed"}',
      `2026-12-01T00:00:00.000Z\tabc\tINFO\t${emf('RefreshRefused', { class: 'invalid_grant' })}`,
      'not json {',
    ]);

    expect(metrics).toEqual([
      {
        namespace: 'WiseTokenBroker',
        name: 'RefreshRefused',
        dimensions: { service: 'wise-broker-prod', class: 'invalid_grant' },
      },
    ]);
  });
});

describe('metricCoverage', () => {
  it('lists an emitted metric with the alarm and the widget that watch it, and passes', () => {
    const { coverage, failures } = check({ Alarm: refreshFailedAlarm() }, [emf('RefreshFailed')]);

    expect(failures).toEqual([]);
    expect(coverage.emitted).toEqual([
      expect.objectContaining({
        name: 'RefreshFailed',
        functions: ['refresh'],
        alarms: ['wise-broker-prod-RefreshFailing'],
        widgets: ['wise-broker-prod › Tokens'],
      }),
    ]);
    expect(coverage.publishedByAws).toEqual([
      expect.objectContaining({
        namespace: 'AWS/Lambda',
        name: 'Errors',
        widgets: ['wise-broker-prod › Tokens'],
      }),
    ]);
  });

  it('fails for an alarm whose dimension value no function emits', () => {
    const { failures } = check(
      {
        Alarm: refreshFailedAlarm({ Dimensions: [{ Name: 'service', Value: 'wise-broker-prd' }] }),
      },
      [emf('RefreshFailed')],
    );

    expect(failures).toEqual([
      expect.stringMatching(
        /^The alarm wise-broker-prod-RefreshFailing watches .*service=wise-broker-prd.*no function publishes with that service dimension/,
      ),
    ]);
  });

  it('fails for an alarm on a namespace no function publishes to', () => {
    const { failures } = check({ Alarm: refreshFailedAlarm({ Namespace: 'WiseBroker' }) }, [
      emf('RefreshFailed'),
    ]);

    expect(failures).toEqual([expect.stringContaining('no function publishes to the namespace WiseBroker')]);
  });

  it('fails for an alarm with a dimension the code never adds, though its name is emitted', () => {
    const { failures } = check(
      {
        Alarm: refreshFailedAlarm({
          Dimensions: [
            { Name: 'service', Value: 'wise-broker-prod' },
            { Name: 'class', Value: 'invalid_grant' },
          ],
        }),
      },
      [emf('RefreshFailed')],
    );

    expect(failures).toEqual([
      expect.stringContaining('no reason in rehearsal/unemitted-metrics.ts explains'),
    ]);
  });

  it('accepts a watched metric the journey cannot emit when a reason covers it, and keeps the reason', () => {
    const { coverage, failures } = check(
      {
        Alarm: alarm('wise-broker-prod-ConnectionLostToCrash', {
          Namespace: 'WiseTokenBroker',
          MetricName: 'ConnectionLostToCrash',
          Dimensions: [{ Name: 'service', Value: 'wise-broker-prod' }],
        }),
      },
      [emf('RefreshFailed')],
    );

    expect(failures).toEqual([]);
    expect(coverage.unemitted).toEqual([
      expect.objectContaining({
        name: 'ConnectionLostToCrash',
        reason: expect.stringContaining('npm run chaos'),
      }),
    ]);
  });

  it('fails for an AWS metric whose dimension refers to no resource of its kind', () => {
    const { failures } = check(
      {
        Alarm: alarm('wise-broker-prod-refresh-errors', {
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'Dashboard' } }],
        }),
      },
      [emf('RefreshFailed')],
    );

    expect(failures).toEqual([
      expect.stringContaining(
        'its dimension FunctionName refers to Dashboard, which is not an AWS::Lambda::Function',
      ),
    ]);
  });

  it('fails for an emitted metric that no dashboard widget shows', () => {
    const { failures } = check({ Alarm: refreshFailedAlarm() }, [emf('RefreshFailed'), emf('TokenVended')]);

    expect(failures).toEqual([
      expect.stringMatching(/^refresh emitted WiseTokenBroker TokenVended .*no dashboard widget shows/),
    ]);
  });
});
