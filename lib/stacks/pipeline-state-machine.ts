import { ArnFormat, type CfnResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import {
  FUNCTION_ARN_PLACEHOLDERS,
  loadDefinitionText,
  type PipelineFunctionName,
} from '../pipeline/definition.ts';
import { acknowledge } from './nag.ts';
import type { Functions } from './pipeline-functions.ts';
import type { RestoreSandbox } from './restore-sandbox.ts';
import { StackPart } from './stable-ids.ts';

export interface PipelineStateMachineProps {
  functions: Functions;
  sandbox: RestoreSandbox;
  logRetention: RetentionDays;
}

/** The state machine (lib/pipeline/definition), with the right to run its Lambdas and its Distributed Map. */
export class PipelineStateMachine extends StackPart {
  readonly stateMachine: StateMachine;

  constructor(scope: Construct, id: string, props: PipelineStateMachineProps) {
    super(scope, id);
    const { functions, sandbox } = props;
    const stateMachineLogs = new LogGroup(this, 'StateMachineLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const pipelineFunctions = Object.keys(FUNCTION_ARN_PLACEHOLDERS) as PipelineFunctionName[];
    const machine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromString(loadDefinitionText()),
      definitionSubstitutions: Object.fromEntries(
        pipelineFunctions.map((name) => [FUNCTION_ARN_PLACEHOLDERS[name], functions[name].fn.functionArn]),
      ),
      stateMachineType: StateMachineType.STANDARD,
      logs: { destination: stateMachineLogs, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.stateMachine = machine;
    machine.addToRolePolicy(
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: pipelineFunctions.map((name) => functions[name].fn.functionArn),
      }),
    );
    acknowledge(
      machine,
      'AwsSolutions-IAM5[Resource::*]',
      'Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups, DescribeResourcePolicies, PutResourcePolicy) and X-Ray tracing support no resource-level permissions.',
    );
    // Restores run as child executions (a Distributed Map), each with its own event history, so
    // a run of thousands of restores stays far from one execution's 25,000-event limit.
    const childExecutions = new Policy(machine, 'DistributedMapPolicy');
    machine.role.attachInlinePolicy(childExecutions);
    machine.grantStartExecution(childExecutions);
    machine.grantExecution(childExecutions, 'states:DescribeExecution', 'states:StopExecution');
    // A Distributed Map's child executions are named execution:<state machine>/<map run label>:<id>
    // (Step Functions Developer Guide, "IAM policies for using Distributed Map states" and "Redriving
    // Map Runs"): describing, stopping and redriving them needs that ARN, not execution:<name>:*.
    const childExecutionArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${machine.stateMachineName}/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    childExecutions.addStatements(
      new PolicyStatement({
        actions: ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution'],
        resources: [childExecutionArn],
      }),
    );
    acknowledge(
      childExecutions,
      `AwsSolutions-IAM5[Resource::${this.executionsArnFinding()}]`,
      "The Restores Distributed Map starts, describes and stops its own child executions, whose names Step Functions generates: the wildcard covers only this state machine's executions.",
    );
    // The restore step's task token belongs to a child execution of the Distributed Map, so the
    // answer is allowed for those executions as well as for the state machine itself.
    const machineId = Stack.of(this).getLogicalId(machine.node.defaultChild as CfnResource);
    const childExecutionsFinding = `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${machineId}.Name>/*]`;
    const childExecutionsReason =
      "Distributed Map child executions get names Step Functions generates under this state machine's own name: the wildcard covers only its child executions.";
    acknowledge(childExecutions, childExecutionsFinding, childExecutionsReason);
    for (const [responder, scope] of [
      [sandbox.taskRole, sandbox.taskDefinition],
      [functions['task-stopped'].role, functions['task-stopped']],
    ] as const) {
      machine.grantTaskResponse(responder);
      responder.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: [childExecutionArn],
        }),
      );
      acknowledge(scope, childExecutionsFinding, childExecutionsReason);
    }
  }

  /** How cdk-nag names the ARN of this state machine's executions (`execution:<name>:*`). */
  executionsArnFinding(): string {
    const machineId = Stack.of(this).getLogicalId(this.stateMachine.node.defaultChild as CfnResource);
    return `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${machineId}"}]}]}:*`;
  }
}
