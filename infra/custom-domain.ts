import {
  ApiMapping,
  DomainName,
  type HttpApi,
  type IHttpStage,
  SecurityPolicy,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { Certificate, CertificateValidation, type ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import { ARecord, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { ApiGatewayv2DomainProperties } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { BrokerConfig } from '#shared/config/broker-config.ts';

/** A deployment's own domain, as configured (`domain`). */
export type DomainSettings = NonNullable<BrokerConfig['domain']>;

export interface CustomDomainProps {
  readonly domain: DomainSettings;
  readonly api: HttpApi;
  /** The stage the domain serves (the broker's `$default`). */
  readonly stage: IHttpStage;
}

/**
 * The broker's own host name in front of its HTTP API: a regional API Gateway custom domain (TLS 1.2) with
 * the configured ACM certificate, or one issued for the name and validated by DNS in the hosted zone; an
 * API mapping of the whole API at the domain's root; and a Route 53 alias record of the name to the
 * domain's regional endpoint. The hosted zone is named by its id and domain, so the synth looks nothing up.
 */
export class CustomDomain extends Construct {
  readonly domainName: DomainName;
  readonly certificate: ICertificate;
  /** `https://<name>`: the base URL of every route, and of the redirect URI. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: CustomDomainProps) {
    super(scope, id);
    const { domain } = props;
    const zone = HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
      hostedZoneId: domain.hostedZone.id,
      zoneName: domain.hostedZone.name,
    });
    this.certificate =
      domain.certificateArn === undefined
        ? new Certificate(this, 'Certificate', {
            domainName: domain.name,
            validation: CertificateValidation.fromDns(zone),
          })
        : Certificate.fromCertificateArn(this, 'Certificate', domain.certificateArn);
    this.domainName = new DomainName(this, 'DomainName', {
      domainName: domain.name,
      certificate: this.certificate,
      securityPolicy: SecurityPolicy.TLS_1_2,
    });
    new ApiMapping(this, 'ApiMapping', { api: props.api, domainName: this.domainName, stage: props.stage });
    new ARecord(this, 'AliasRecord', {
      zone,
      recordName: `${domain.name}.`,
      target: RecordTarget.fromAlias(
        new ApiGatewayv2DomainProperties(
          this.domainName.regionalDomainName,
          this.domainName.regionalHostedZoneId,
        ),
      ),
      comment: 'The Wise token broker: its API and the OAuth callback',
    });
    this.url = `https://${domain.name}`;
  }
}
