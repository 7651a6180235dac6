import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  buildApp,
  configurationErrorOf,
  NO_BUNDLING,
  REGION,
  removeOutdirs,
  TEST_CONTEXT,
  variablesOf,
} from './support.ts';

afterAll(removeOutdirs);

const ZONE = { id: 'Z0123456789ABCDEFGHIJ', name: 'example.com' };
const CERTIFICATE_ARN = `arn:aws:acm:${REGION}:${ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0`;

function domainApp(domain: Record<string, unknown>, more: Record<string, unknown> = {}) {
  return buildApp({ ...TEST_CONTEXT, stage: 'branded', domain, ...more, ...NO_BUNDLING });
}

describe('a custom domain with a certificate from the configuration', () => {
  const { app, stateless } = domainApp({
    name: 'wise.example.com',
    hostedZone: ZONE,
    certificateArn: CERTIFICATE_ARN,
  });
  const template = Template.fromStack(stateless);

  it('declares the domain name with that certificate, regional, TLS 1.2, and issues no other', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'wise.example.com',
      DomainNameConfigurations: [
        { CertificateArn: CERTIFICATE_ARN, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' },
      ],
    });
    template.resourceCountIs('AWS::CertificateManager::Certificate', 0);
  });

  it("maps the whole HTTP API's $default stage at the domain's root", () => {
    const apiId = Object.keys(template.findResources('AWS::ApiGatewayV2::Api'))[0];
    const domainId = Object.keys(template.findResources('AWS::ApiGatewayV2::DomainName'))[0];
    const stageId = Object.keys(template.findResources('AWS::ApiGatewayV2::Stage'))[0];

    const mappings = Object.values(template.findResources('AWS::ApiGatewayV2::ApiMapping'));
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.Properties).toEqual({
      ApiId: { Ref: apiId },
      DomainName: { Ref: domainId },
      Stage: '$default',
    });
    // Created once the stage exists, which the mapping names by its name only.
    expect(mappings[0]?.DependsOn).toContain(stageId);
  });

  it("adds an alias A record of the name in the hosted zone, to the domain's regional endpoint", () => {
    const domainId = Object.keys(template.findResources('AWS::ApiGatewayV2::DomainName'))[0];

    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'wise.example.com.',
      Type: 'A',
      HostedZoneId: ZONE.id,
      AliasTarget: {
        DNSName: { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] },
        HostedZoneId: { 'Fn::GetAtt': [domainId, 'RegionalHostedZoneId'] },
      },
    });
  });

  it('makes the redirect URI, the callback and API outputs follow the domain', () => {
    const redirectUri = 'https://wise.example.com/oauth/callback';

    for (const name of ['oauth-callback', 'connect-sessions', 'tokens']) {
      expect(variablesOf(stateless, name).REDIRECT_URI).toBe(redirectUri);
    }
    template.hasOutput('CallbackUrl', { Value: redirectUri });
    template.hasOutput('ApiUrl', { Value: 'https://wise.example.com' });
  });

  it('turns off the execute-api endpoint, so the broker has one address', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: true });
  });

  it('keeps the domain out of the functions’ configuration', () => {
    expect(JSON.parse(String(variablesOf(stateless, 'tokens').BROKER_CONFIG))).not.toHaveProperty('domain');
  });

  it('finds nothing unacknowledged with cdk-nag', () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });
});

describe('a custom domain without a certificate ARN', () => {
  const { app, stateless } = domainApp({ name: 'connect.wise.example.com', hostedZone: ZONE });
  const template = Template.fromStack(stateless);

  it('issues a certificate for the name, validated by DNS in the hosted zone, and uses it', () => {
    const certificates = template.findResources('AWS::CertificateManager::Certificate');
    const [certificateId] = Object.keys(certificates);

    template.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'connect.wise.example.com',
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'connect.wise.example.com', HostedZoneId: ZONE.id }],
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainNameConfigurations: [{ CertificateArn: { Ref: certificateId } }],
    });
    template.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'connect.wise.example.com.' });
    template.hasOutput('CallbackUrl', { Value: 'https://connect.wise.example.com/oauth/callback' });
  });

  it('finds nothing unacknowledged with cdk-nag', () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });
});

describe('without a custom domain', () => {
  it('declares no domain, mapping, record or certificate and keeps the execute-api endpoint', () => {
    const template = Template.fromStack(buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING }).stateless);

    for (const type of [
      'AWS::ApiGatewayV2::DomainName',
      'AWS::ApiGatewayV2::ApiMapping',
      'AWS::Route53::RecordSet',
      'AWS::CertificateManager::Certificate',
    ]) {
      template.resourceCountIs(type, 0);
    }
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: Match.absent() });
  });
});

describe('a custom domain the configuration gets wrong', () => {
  it.each([
    [
      'a name outside the hosted zone',
      { name: 'wise.example.org', hostedZone: ZONE },
      {},
      'domain.name',
      /must lie in the hosted zone/,
    ],
    [
      'a URL instead of a host name',
      { name: 'https://wise.example.com/', hostedZone: ZONE },
      {},
      'domain.name',
      /must be a host name such as "wise.example.com"/,
    ],
    [
      'a certificate in another region',
      {
        name: 'wise.example.com',
        hostedZone: ZONE,
        certificateArn: CERTIFICATE_ARN.replace(REGION, 'us-east-1'),
      },
      {},
      'domain.certificateArn',
      /names a certificate in us-east-1, but the API's regional domain needs one in eu-west-1/,
    ],
    [
      'a redirect URI on another host',
      { name: 'wise.example.com', hostedZone: ZONE },
      { redirectUri: 'https://other.example.com/oauth/callback' },
      'redirectUri',
      /must be on the domain wise\.example\.com when "domain" is set/,
    ],
    [
      'a hosted zone without its id',
      { name: 'wise.example.com', hostedZone: { name: 'example.com' } },
      {},
      'domain.hostedZone.id',
      /is required and must be the Route 53 hosted zone id/,
    ],
  ])('refuses %s, naming the field and the fix', (_case, domain, more, path, message) => {
    const error = configurationErrorOf(() => domainApp(domain, more));

    const problem = error.problems.find((entry) => entry.path === path);
    expect(problem?.message).toMatch(message);
  });
});

describe('a custom domain with private access', () => {
  const { app, stateless } = domainApp(
    { name: 'wise.example.com', hostedZone: ZONE, certificateArn: CERTIFICATE_ARN },
    { privateAccess: { vpcEndpointIds: ['vpce-0123456789abcdef0'] } },
  );
  const template = Template.fromStack(stateless);

  it('maps the HTTP API, which keeps the OAuth pages, so the redirect URI follows the domain', () => {
    const apiId = Object.keys(template.findResources('AWS::ApiGatewayV2::Api'))[0];

    template.hasResourceProperties('AWS::ApiGatewayV2::ApiMapping', { ApiId: { Ref: apiId } });
    expect(variablesOf(stateless, 'oauth-callback').REDIRECT_URI).toBe(
      'https://wise.example.com/oauth/callback',
    );
  });

  it('finds nothing unacknowledged with cdk-nag', () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });
});
