import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  type IGrantable,
  type IPrincipal,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ROLE_ENV } from '../adapters/stores.ts';
import { acknowledge, acknowledgeWildcardResources } from './nag.ts';

export interface PipelineFunctionProps {
  /** The contract's function name: the entry is `functions/<name>/handler.ts`. */
  name: string;
  repoRoot: string;
  memorySize: number;
  timeout: Duration;
  environment: Record<string, string>;
  logRetention: RetentionDays;
  /** Where asynchronous invocations that failed every attempt go (event-driven functions). */
  deadLetterQueue?: IQueue;
}

/**
 * One pipeline Lambda: Node.js 22 on arm64, bundled as ESM by the local esbuild, JSON logs to its
 * own log group with retention, X-Ray tracing, and a role of its own that starts with nothing but
 * writing its logs; each grant is added by the stack.
 */
export class PipelineFunction extends Construct implements IGrantable {
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly grantPrincipal: IPrincipal;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const entry = join(props.repoRoot, 'functions', props.name, 'handler.ts');
    if (!existsSync(entry)) {
      throw new Error(
        `the Lambda entry ${entry} does not exist: every pipeline function needs functions/${props.name}/handler.ts exporting "handler"`,
      );
    }
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `backup-validator ${props.name} function`,
    });
    this.grantPrincipal = this.role;
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`${this.logGroup.logGroupArn}:log-stream:*`, this.logGroup.logGroupArn],
      }),
    );
    this.fn = new NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      projectRoot: props.repoRoot,
      depsLockFilePath: join(props.repoRoot, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      tracing: Tracing.ACTIVE,
      environment: { ...props.environment, [ROLE_ENV]: this.role.roleName },
      ...(props.deadLetterQueue ? { deadLetterQueue: props.deadLetterQueue } : {}),
      description: `backup-validator ${props.name}`,
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        platform: 'node',
        mainFields: ['module', 'main'],
        // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
        banner:
          "import { createRequire as __bvCreateRequire } from 'node:module'; const require = __bvCreateRequire(import.meta.url);",
        // The SDK the tests ran, not whichever version the runtime ships that week.
        bundleAwsSDK: true,
        // The native SQLite module is for the restore container only; a Lambda that pulls it in fails loudly.
        externalModules: ['better-sqlite3'],
        sourceMap: true,
        minify: false,
      },
    });
    acknowledgeWildcardResources(
      this,
      [`${this.logGroup.logGroupArn}:log-stream:*`],
      "Log streams are created by the Lambda service with generated names inside this function's own log group.",
    );
    acknowledge(
      this,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (added by active tracing).',
    );
    acknowledge(
      this,
      'AwsSolutions-L1',
      "The pipeline code targets Node.js 22 (the project's supported runtime, tested on it); move to a newer runtime with the project, not silently.",
    );
  }
}
