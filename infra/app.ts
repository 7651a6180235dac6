// The CDK app (cdk.json runs `node infra/app.ts`): `npx cdk synth`, `npx cdk deploy --all -c configFile=...`.
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigurationError } from '#shared/config/broker-config.ts';
import { createBrokerApp } from './broker-app.ts';

try {
  const { app } = createBrokerApp();
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigurationError)) throw error;
  // The message is the whole answer: which fields to fix and how.
  console.error(error.message);
  process.exit(1);
}
