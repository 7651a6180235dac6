import type { CloudAssembly, TemplateResource } from './assembly.ts';
import { resources } from './assembly.ts';

/** A CloudWatch metric as CloudWatch tells metrics apart: namespace, name and the exact dimension set. */
export interface MetricId {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

/** A metric some function emitted during the journey, and what watches it. */
export interface EmittedMetric extends MetricId {
  /** The functions whose output carried it. */
  functions: string[];
  /** How many embedded-metric-format documents carried it. */
  documents: number;
  /** The alarms that watch it, by name (or logical id). */
  alarms: string[];
  /** The dashboard widgets that show it, by dashboard and title. */
  widgets: string[];
}

/** A metric an alarm or a widget watches that no function emitted during the journey. */
export interface WatchedMetric extends MetricId {
  alarms: string[];
  widgets: string[];
  /** Why the journey cannot emit it (rehearsal/unemitted-metrics.ts), or what publishes it instead. */
  reason?: string;
}

/** Which metrics the journey emitted, which alarms and widgets watch them, and what they watch in vain. */
export interface MetricCoverage {
  emitted: EmittedMetric[];
  /** Watched metrics of the broker's own namespaces that the journey did not emit. */
  unemitted: WatchedMetric[];
  /** Watched metrics AWS publishes (`AWS/...` namespaces): the journey cannot emit them. */
  publishedByAws: WatchedMetric[];
}

/** What a function publishes its metrics under: its Powertools namespace and service. */
export interface MetricEmitter {
  function: string;
  namespace: string;
  service: string;
}

/** Why a watched metric of the broker stays unemitted by the journey. */
export interface UnemittedMetricReason {
  covers: (metric: MetricId) => boolean;
  reason: string;
}

interface Watch {
  metric: MetricId;
  kind: 'alarm' | 'widget';
  by: string;
  /** The stack whose template declares the watch, for resolving its references. */
  stack: string;
}

/** A reference in a template value (`Ref`, `Fn::GetAtt`), written into text as this placeholder. */
const REFERENCE = /^\{\{(?:Ref|GetAtt) ([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}\}$/;

/** The namespace AWS services publish their metrics under. */
const AWS_NAMESPACE = /^AWS\//;

/** The resource types whose metrics each AWS namespace publishes, by the dimension naming the resource. */
const AWS_RESOURCE_DIMENSIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'AWS/Lambda': { FunctionName: 'AWS::Lambda::Function' },
  'AWS/SQS': { QueueName: 'AWS::SQS::Queue' },
  'AWS/ApiGateway': { ApiId: 'AWS::ApiGatewayV2::Api' },
  'AWS/Events': { RuleName: 'AWS::Events::Rule' },
  'AWS/DynamoDB': { TableName: 'AWS::DynamoDB::GlobalTable' },
};

function metricKey(metric: MetricId): string {
  const dimensions = Object.entries(metric.dimensions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}=${value}`);
  return `${metric.namespace}|${metric.name}|${dimensions.join(',')}`;
}

/** `Namespace MetricName {dimension=value, ...}`, as an operator would look it up. */
export function describeMetric(metric: MetricId): string {
  const dimensions = Object.entries(metric.dimensions).map(([name, value]) => `${name}=${value}`);
  return `${metric.namespace} ${metric.name} {${dimensions.join(', ')}}`;
}

/**
 * The metrics in a function's output: each line holding an embedded-metric-format document (`_aws.
 * CloudWatchMetrics`), read as CloudWatch reads it: every dimension set of every directive, with the
 * values the document gives the dimensions.
 */
export function metricsInOutput(lines: readonly string[]): MetricId[] {
  const found: MetricId[] = [];
  for (const line of lines) {
    const start = line.indexOf('{');
    if (start < 0 || !line.includes('"CloudWatchMetrics"')) continue;
    let document: Record<string, unknown>;
    try {
      document = JSON.parse(line.slice(start)) as Record<string, unknown>;
    } catch {
      continue;
    }
    const directives = (document._aws as { CloudWatchMetrics?: unknown } | undefined)?.CloudWatchMetrics;
    if (!Array.isArray(directives)) continue;
    for (const directive of directives as {
      Namespace?: string;
      Dimensions?: string[][];
      Metrics?: { Name?: string }[];
    }[]) {
      const dimensionSets = directive.Dimensions?.length ? directive.Dimensions : [[]];
      for (const metric of directive.Metrics ?? []) {
        if (typeof directive.Namespace !== 'string' || typeof metric.Name !== 'string') continue;
        if (!(metric.Name in document)) continue;
        for (const names of dimensionSets) {
          const dimensions: Record<string, string> = {};
          for (const name of names) dimensions[name] = String(document[name]);
          found.push({ namespace: directive.Namespace, name: metric.Name, dimensions });
        }
      }
    }
  }
  return found;
}

/** A template value as text, with each `Ref` and `Fn::GetAtt` written as a `{{Ref Id}}` placeholder. */
function templateText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (typeof object.Ref === 'string') return `{{Ref ${object.Ref}}}`;
    const getAtt = object['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `{{GetAtt ${getAtt.join('.')}}}`;
    const join = object['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map(templateText).join(String(join[0]));
    }
  }
  return `{{${JSON.stringify(value)}}}`;
}

function dimensionsOf(value: unknown): Record<string, string> {
  const dimensions: Record<string, string> = {};
  for (const entry of (Array.isArray(value) ? value : []) as { Name?: unknown; Value?: unknown }[]) {
    dimensions[String(entry.Name)] = templateText(entry.Value);
  }
  return dimensions;
}

function alarmWatches(logicalId: string, resource: TemplateResource): { metric: MetricId; by: string }[] {
  const properties = resource.Properties ?? {};
  const by = typeof properties.AlarmName === 'string' ? properties.AlarmName : logicalId;
  const watches: { metric: MetricId; by: string }[] = [];
  if (properties.MetricName !== undefined) {
    watches.push({
      by,
      metric: {
        namespace: templateText(properties.Namespace),
        name: templateText(properties.MetricName),
        dimensions: dimensionsOf(properties.Dimensions),
      },
    });
  }
  for (const query of (properties.Metrics as { MetricStat?: { Metric?: Record<string, unknown> } }[]) ?? []) {
    const metric = query.MetricStat?.Metric;
    if (!metric) continue;
    watches.push({
      by,
      metric: {
        namespace: templateText(metric.Namespace),
        name: templateText(metric.MetricName),
        dimensions: dimensionsOf(metric.Dimensions),
      },
    });
  }
  return watches;
}

interface DashboardWidget {
  properties?: { title?: string; metrics?: unknown[][] };
}

function widgetWatches(logicalId: string, resource: TemplateResource): { metric: MetricId; by: string }[] {
  const properties = resource.Properties ?? {};
  const dashboard = typeof properties.DashboardName === 'string' ? properties.DashboardName : logicalId;
  let body: { widgets?: DashboardWidget[] };
  try {
    body = JSON.parse(templateText(properties.DashboardBody)) as { widgets?: DashboardWidget[] };
  } catch {
    return [];
  }
  const watches: { metric: MetricId; by: string }[] = [];
  for (const widget of body.widgets ?? []) {
    const by = `${dashboard} › ${widget.properties?.title ?? '(untitled)'}`;
    for (const row of widget.properties?.metrics ?? []) {
      const parts = row.filter((part): part is string => typeof part === 'string');
      // A math expression's row is its options object alone; a metric's row starts with its namespace.
      if (parts.length < 2 || typeof row[0] !== 'string') continue;
      const [namespace = '', name = '', ...pairs] = parts;
      const dimensions: Record<string, string> = {};
      for (let index = 0; index + 1 < pairs.length; index += 2) {
        dimensions[pairs[index] as string] = pairs[index + 1] as string;
      }
      watches.push({ by, metric: { namespace, name, dimensions } });
    }
  }
  return watches;
}

/** Every metric each alarm and dashboard widget of the assembly watches. */
export function watchedMetrics(assembly: CloudAssembly): Watch[] {
  const watches: Watch[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::CloudWatch::Alarm')) {
    for (const watch of alarmWatches(logicalId, resource)) {
      watches.push({ ...watch, kind: 'alarm', stack: stack.name });
    }
  }
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::CloudWatch::Dashboard')) {
    for (const watch of widgetWatches(logicalId, resource)) {
      watches.push({ ...watch, kind: 'widget', stack: stack.name });
    }
  }
  return watches;
}

/**
 * Why an AWS metric cannot be checked against its resource, or undefined when each dimension naming a
 * resource refers to one of that type in the watching stack.
 */
function awsResourceProblem(assembly: CloudAssembly, watch: Watch): string | undefined {
  const expected = AWS_RESOURCE_DIMENSIONS[watch.metric.namespace];
  if (!expected) return undefined;
  const stack = assembly.stacks.find((candidate) => candidate.name === watch.stack);
  for (const [dimension, type] of Object.entries(expected)) {
    const value = watch.metric.dimensions[dimension];
    if (value === undefined) continue;
    const logicalId = REFERENCE.exec(value)?.[1];
    if (logicalId === undefined) continue;
    const resource = stack?.template.Resources?.[logicalId];
    if (resource?.Type !== type) {
      return `its dimension ${dimension} refers to ${logicalId}, which is not an ${type} of ${watch.stack}`;
    }
  }
  return undefined;
}

/**
 * Compares what the journey emitted with what the alarms and widgets watch. Fails (in `failures`) for
 * each alarm or widget watching a broker metric that no function emitted and no reason covers (a typo in
 * a name, a namespace or a dimension makes a silent alarm), for each watched metric outside the
 * namespaces and services the functions publish under, for an AWS metric whose dimension names no
 * resource of its type, and for each emitted metric that no dashboard widget shows.
 */
export function metricCoverage(input: {
  assembly: CloudAssembly;
  emitted: readonly { function: string; metrics: readonly MetricId[] }[];
  emitters: readonly MetricEmitter[];
  reasons: readonly UnemittedMetricReason[];
}): { coverage: MetricCoverage; failures: string[] } {
  const failures: string[] = [];
  const watches = watchedMetrics(input.assembly);
  const emitted = new Map<string, EmittedMetric>();
  for (const source of input.emitted) {
    for (const metric of source.metrics) {
      const key = metricKey(metric);
      const entry = emitted.get(key) ?? { ...metric, functions: [], documents: 0, alarms: [], widgets: [] };
      if (!entry.functions.includes(source.function)) entry.functions.push(source.function);
      entry.documents += 1;
      emitted.set(key, entry);
    }
  }
  const unemitted = new Map<string, WatchedMetric>();
  const publishedByAws = new Map<string, WatchedMetric>();
  for (const watch of watches) {
    const key = metricKey(watch.metric);
    const list = watch.kind === 'alarm' ? 'alarms' : 'widgets';
    const seen = emitted.get(key);
    if (seen) {
      if (!seen[list].includes(watch.by)) seen[list].push(watch.by);
      continue;
    }
    const aws = AWS_NAMESPACE.test(watch.metric.namespace);
    const into = aws ? publishedByAws : unemitted;
    const entry = into.get(key) ?? { ...watch.metric, alarms: [], widgets: [] };
    if (!entry[list].includes(watch.by)) entry[list].push(watch.by);
    into.set(key, entry);
    const what = `${watch.kind === 'alarm' ? 'The alarm' : 'The dashboard widget'} ${watch.by} watches ${describeMetric(watch.metric)}`;
    if (aws) {
      entry.reason ??= `Published by AWS (${watch.metric.namespace}), not by the functions.`;
      const problem = awsResourceProblem(input.assembly, watch);
      if (problem) failures.push(`${what}, but ${problem}: it would watch nothing.`);
      continue;
    }
    const namespaces = [...new Set(input.emitters.map((emitter) => emitter.namespace))];
    const services = [...new Set(input.emitters.map((emitter) => emitter.service))];
    if (!namespaces.includes(watch.metric.namespace)) {
      failures.push(
        `${what}, but no function publishes to the namespace ${watch.metric.namespace} (they publish to ${namespaces.join(', ')}): it would never fire.`,
      );
      continue;
    }
    if (!services.includes(watch.metric.dimensions.service ?? '')) {
      failures.push(
        `${what}, but no function publishes with that service dimension (theirs: service=${services.join(', service=')}): it would never fire.`,
      );
      continue;
    }
    const reason = input.reasons.find((candidate) => candidate.covers(watch.metric))?.reason;
    if (reason) {
      entry.reason = reason;
      continue;
    }
    failures.push(
      `${what}, which no function emitted during the journey and no reason in rehearsal/unemitted-metrics.ts explains: fix its name or dimensions (a typo makes it silent), or give the reason the journey cannot emit it.`,
    );
  }
  for (const metric of emitted.values()) {
    if (metric.widgets.length === 0) {
      failures.push(
        `${metric.functions.join(', ')} emitted ${describeMetric(metric)}, which no dashboard widget shows: add it to the dashboard (infra/monitoring.ts).`,
      );
    }
  }
  const byName = (a: MetricId, b: MetricId) => metricKey(a).localeCompare(metricKey(b));
  return {
    coverage: {
      emitted: [...emitted.values()].sort(byName),
      unemitted: [...unemitted.values()].sort(byName),
      publishedByAws: [...publishedByAws.values()].sort(byName),
    },
    failures: [...new Set(failures)],
  };
}
