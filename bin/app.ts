import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { UsageError } from '../lib/core/errors.ts';
import { BackupValidatorStack } from '../lib/stacks/backup-validator-stack.ts';
import { type ContextInputs, stackInputsFromContext } from '../lib/stacks/inputs.ts';

const CONTEXT_KEYS = [
  'sources',
  'config',
  'configFile',
  'schedule',
  'alarmEmail',
  'redundancyTargets',
  'validateOnArrival',
  's3PrefixListId',
  'dynamodbPrefixListId',
  'kmsKeyArns',
] as const;

const app = new App();
const context: ContextInputs = {};
for (const key of CONTEXT_KEYS) {
  const value = app.node.tryGetContext(key);
  if (value !== undefined) (context as Record<string, unknown>)[key] = value;
}

try {
  new BackupValidatorStack(app, app.node.tryGetContext('stackName') ?? 'BackupValidator', {
    ...stackInputsFromContext(context),
    description: 'backup-validator: proves that backups in S3 can really be restored',
  });
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`backup-validator: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
