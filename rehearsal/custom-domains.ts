import { type CloudAssembly, resources } from './assembly.ts';

/** A custom domain of the assembly that serves an HTTP API: its host name and the API's logical id. */
export interface ServedDomain {
  host: string;
  apiLogicalId: string;
}

/** The custom domains the assembly declares and the sentences naming what is missing in their wiring. */
export interface CustomDomains {
  served: ServedDomain[];
  failures: string[];
}

/** The logical id a `{Ref}` or `{Fn::GetAtt: [id, attribute]}` names, when the value is one. */
function referenced(value: unknown, attribute?: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const ref = (value as { Ref?: unknown }).Ref;
  if (attribute === undefined) return typeof ref === 'string' ? ref : undefined;
  const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  return Array.isArray(getAtt) && getAtt[1] === attribute ? String(getAtt[0]) : undefined;
}

/**
 * Reads what makes a custom domain reach an HTTP API, as DNS and API Gateway would follow it: the domain
 * name with a certificate, an API mapping of an API's stage at the domain's root, and a Route 53 alias
 * record of the name to the domain's regional endpoint. A domain is served only when all three hold; a
 * missing link is a failure that names it.
 */
export function readCustomDomains(assembly: CloudAssembly): CustomDomains {
  const served: ServedDomain[] = [];
  const failures: string[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::ApiGatewayV2::DomainName')) {
    const props = resource.Properties ?? {};
    const host = String(props.DomainName ?? '');
    const where = `${stack.name} ${logicalId} (${host})`;
    const configurations = (props.DomainNameConfigurations ?? []) as {
      CertificateArn?: unknown;
      EndpointType?: string;
    }[];
    const certificate = configurations[0]?.CertificateArn;
    const certificateId = referenced(certificate);
    const issued =
      certificateId === undefined ? undefined : (stack.template.Resources?.[certificateId]?.Properties ?? {});
    if (certificate === undefined) {
      failures.push(
        `${where}: the custom domain has no certificate, so browsers cannot reach it over HTTPS.`,
      );
    } else if (issued !== undefined && issued.DomainName !== host) {
      failures.push(
        `${where}: its certificate ${certificateId} is issued for ${String(issued.DomainName)}, not for the domain.`,
      );
    }
    if (configurations[0]?.EndpointType !== 'REGIONAL') {
      failures.push(
        `${where}: the custom domain is not REGIONAL; the alias record and the HTTP API need one.`,
      );
    }
    const mappings = [...resources(assembly, 'AWS::ApiGatewayV2::ApiMapping')].filter(
      ({ stack: mappingStack, resource: mapping }) =>
        mappingStack === stack && referenced(mapping.Properties?.DomainName) === logicalId,
    );
    const mapping = mappings[0]?.resource.Properties ?? {};
    const apiLogicalId = referenced(mapping.ApiId);
    if (mappings.length === 0 || apiLogicalId === undefined) {
      failures.push(
        `${where}: no API mapping maps an HTTP API to the custom domain, so it answers 403 to every request.`,
      );
      continue;
    }
    if (mapping.ApiMappingKey !== undefined && mapping.ApiMappingKey !== '') {
      failures.push(
        `${where}: the API is mapped under /${String(mapping.ApiMappingKey)}, but the broker's URLs are built at the domain's root.`,
      );
    }
    const records = [...resources(assembly, 'AWS::Route53::RecordSet')].filter(
      ({ resource: record }) =>
        record.Properties?.Name === `${host}.` &&
        record.Properties?.Type === 'A' &&
        referenced(
          (record.Properties?.AliasTarget as { DNSName?: unknown } | undefined)?.DNSName,
          'RegionalDomainName',
        ) === logicalId,
    );
    if (records.length === 0) {
      failures.push(
        `${where}: no Route 53 A record aliases ${host} to the custom domain's regional endpoint, so the name does not resolve to the API.`,
      );
      continue;
    }
    served.push({ host, apiLogicalId });
  }
  return { served, failures };
}

/**
 * What the browser's request to a URL on a served custom domain reaches: the same path and query on the
 * local API that stands in for the mapped HTTP API (DNS and TLS are stood in for, not rehearsed). Other
 * URLs are returned as they are.
 */
export function throughCustomDomain(url: string, served: readonly ServedDomain[], apiUrl: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' || !served.some((domain) => domain.host === parsed.hostname)) return url;
  return `${apiUrl}${parsed.pathname}${parsed.search}`;
}
