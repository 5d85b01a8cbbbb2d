import { RemovalPolicy } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  type IPeer,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface SandboxNetworkProps {
  /** Managed prefix list of S3 in the region (pl-...); without it, see the egress note below. */
  s3PrefixListId?: string;
  dynamodbPrefixListId?: string;
  logRetention: RetentionDays;
}

export const SANDBOX_INTERFACE_ENDPOINTS = {
  EcrApi: InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Logs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  StepFunctions: InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
} as const;

/**
 * Where a restored backup runs: two isolated subnets with no NAT gateway and no internet gateway,
 * so no route leaves the VPC except the S3 and DynamoDB gateway endpoints and the private
 * interface endpoints the task needs (image pull, logs, task-token callbacks).
 */
export class SandboxNetwork extends Construct {
  readonly vpc: Vpc;
  readonly securityGroup: SecurityGroup;

  constructor(scope: Construct, id: string, props: SandboxNetworkProps) {
    super(scope, id);
    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'sandbox', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // The default security group is attached to nothing here, and without an internet route it
      // could not reach out anyway; restricting it would add a custom-resource Lambda to the stack.
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3 },
        DynamoDb: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        All: {
          destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: FlowLogTrafficType.ALL,
        },
      },
    });

    this.securityGroup = new SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      allowAllOutbound: false,
      description: 'restore sandbox: no ingress; HTTPS out to the VPC endpoints only',
    });
    const endpointSecurityGroup = new SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      allowAllOutbound: false,
      description: 'interface endpoints: HTTPS in from the restore sandbox only',
    });
    endpointSecurityGroup.addIngressRule(this.securityGroup, Port.tcp(443), 'HTTPS from the restore sandbox');
    this.securityGroup.addEgressRule(
      Peer.ipv4(this.vpc.vpcCidrBlock),
      Port.tcp(443),
      'HTTPS to the interface endpoints',
    );
    this.securityGroup.addEgressRule(
      gatewayPeer(props.s3PrefixListId),
      Port.tcp(443),
      'HTTPS to S3 through its gateway endpoint',
    );
    if (props.dynamodbPrefixListId) {
      this.securityGroup.addEgressRule(
        gatewayPeer(props.dynamodbPrefixListId),
        Port.tcp(443),
        'HTTPS to DynamoDB through its gateway endpoint',
      );
    }

    for (const [name, service] of Object.entries(SANDBOX_INTERFACE_ENDPOINTS)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [endpointSecurityGroup],
        subnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      });
    }
  }
}

/**
 * The S3 and DynamoDB prefix-list ids are regional and need a lookup (credentials) to know at
 * synth, which an environment-agnostic stack cannot do. Without them the egress rule names any
 * address on 443: the isolated route tables still send traffic only to the VPC and to the two
 * gateway endpoints, so the reachable set is the same; pass the ids to name them in the rule too.
 */
function gatewayPeer(prefixListId: string | undefined): IPeer {
  return prefixListId ? Peer.prefixList(prefixListId) : Peer.anyIpv4();
}
