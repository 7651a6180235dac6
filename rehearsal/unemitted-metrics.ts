import { MetricName, REFUSAL_CLASSES } from '#shared/observability.ts';
import type { MetricId, UnemittedMetricReason } from './metric-coverage.ts';

/**
 * Whether a metric is the broker's `name` with exactly the `service` dimension and the `extra` ones (each
 * with one of the values listed). The namespace and the service are checked against the functions'
 * environment before any reason is asked.
 */
function brokerMetric(name: string, extra: Record<string, readonly string[]> = {}) {
  return (metric: MetricId): boolean => {
    if (metric.name !== name) return false;
    const { service, ...others } = metric.dimensions;
    if (service === undefined) return false;
    const names = Object.keys(others);
    if (names.length !== Object.keys(extra).length) return false;
    return names.every((dimension) => extra[dimension]?.includes(others[dimension] as string) === true);
  };
}

/**
 * The broker metrics an alarm or a dashboard widget watches that no rehearsal journey emits, each with its
 * reason. A watched metric the journey did not emit and no reason here covers fails the rehearsal: its
 * alarm or widget names a metric no function writes (a typo), or the journey must be extended.
 */
export const UNEMITTED_METRIC_REASONS: readonly UnemittedMetricReason[] = [
  {
    covers: brokerMetric(MetricName.invalidClient),
    reason:
      "Wise refuses the client credentials (invalid_client) only when the secret is wrong; the journey's secret is right. The unit tests of refresh-record and the Wise client count it.",
  },
  {
    covers: brokerMetric(MetricName.connectionLostToCrash),
    reason:
      'Needs a process killed between Wise answering a refresh and the write of its answer: npm run chaos kills the broker there; the journey kills nothing.',
  },
  {
    covers: brokerMetric(MetricName.providerUnavailable),
    reason:
      "Needs Wise to answer 5xx, 429 or time out during a refresh; the journey's Wise simulator injects no fault.",
  },
  {
    covers: brokerMetric(MetricName.rejectionNotHonoured),
    reason:
      "The journey's rejectedGeneration step first ends the token at Wise, so the rejection is honoured; a report of a token Wise still takes is counted by the rejection-check unit tests.",
  },
  {
    covers: brokerMetric(MetricName.refreshRefused, {
      class: REFUSAL_CLASSES.filter((refusal) => refusal !== 'invalid_grant'),
    }),
    reason:
      "The journey's refusals are invalid_grant only (the revoked user); the other classes need Wise faults or a wrong secret, counted by the unit tests of refresh-record.",
  },
  {
    covers: brokerMetric(MetricName.requestRefused, {
      error: [
        'invalid_request',
        'forbidden',
        'connection_not_found',
        'method_not_allowed',
        'connection_exists',
        'refresh_token_rejected',
      ],
    }),
    reason:
      "The journey's callers ask only for what their grants allow, and its unsigned call is refused by the gateway before any function; these codes are each covered by the integration tests of their routes.",
  },
];
