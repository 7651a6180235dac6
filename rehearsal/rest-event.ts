import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import type { DeployedRoute } from './deployment.ts';

/**
 * The payload format 1.0 event a REST API's Lambda proxy integration sends for a request that the local
 * gateway received (and, on an IAM route, verified) as the 2.0 event it builds: the method's resource path,
 * the request path without the stage, the verified caller in `requestContext.identity`, single and
 * repeated headers and query parameters, and path parameters as they were sent (a REST API does not
 * percent-decode them).
 */
export function restEventOf(
  event: APIGatewayProxyEventV2,
  route: DeployedRoute,
  stage: string,
): APIGatewayProxyEvent {
  const context = event.requestContext;
  const iam = (context as { authorizer?: { iam?: Record<string, unknown> } }).authorizer?.iam;
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  const headers: Record<string, string> = { ...event.headers } as Record<string, string>;
  if (event.cookies && event.cookies.length > 0) headers.cookie = event.cookies.join('; ');
  const multiValueHeaders = Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, [value]]),
  );
  const query = new URLSearchParams(event.rawQueryString);
  const multiValueQuery: Record<string, string[]> = {};
  for (const [name, value] of query) multiValueQuery[name] = [...(multiValueQuery[name] ?? []), value];
  const hasQuery = Object.keys(multiValueQuery).length > 0;
  const path = event.rawPath.slice(`/${stage}`.length) || '/';
  return {
    resource: route.path,
    path,
    httpMethod: route.method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery
      ? Object.fromEntries(
          Object.entries(multiValueQuery).map(([name, values]) => [name, values.at(-1) ?? '']),
        )
      : null,
    multiValueQueryStringParameters: hasQuery ? multiValueQuery : null,
    pathParameters: event.pathParameters ? rawPathParameters(route.path, path) : null,
    stageVariables: null,
    requestContext: {
      accountId: context.accountId,
      apiId: context.apiId,
      authorizer: null,
      domainName: context.domainName,
      domainPrefix: context.domainPrefix,
      extendedRequestId: context.requestId,
      httpMethod: route.method,
      identity: {
        accessKey: text(iam?.accessKey),
        accountId: text(iam?.accountId),
        apiKey: null,
        apiKeyId: null,
        caller: text(iam?.callerId),
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: text(iam?.principalOrgId),
        sourceIp: context.http.sourceIp,
        user: text(iam?.userId),
        userAgent: context.http.userAgent,
        userArn: text(iam?.userArn),
      },
      path: event.rawPath,
      protocol: context.http.protocol,
      requestId: context.requestId,
      requestTime: context.time,
      requestTimeEpoch: context.timeEpoch,
      resourceId: route.logicalId,
      resourcePath: route.path,
      stage,
    },
    body: event.body ?? null,
    isBase64Encoded: event.isBase64Encoded,
  };
}

/** Each `{name}` of the route's path, as the request's path spelt that segment. */
function rawPathParameters(routePath: string, requestPath: string): Record<string, string> {
  const sent = requestPath.split('/');
  const parameters: Record<string, string> = {};
  routePath.split('/').forEach((segment, index) => {
    const name = /^\{(.+)\}$/.exec(segment)?.[1];
    if (name !== undefined) parameters[name] = sent[index] ?? '';
  });
  return parameters;
}
