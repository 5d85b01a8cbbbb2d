/**
 * What AWS charges for what a run uses, in US dollars. The defaults are the public on-demand
 * prices of us-east-1 (Linux/x86) as this project knew them; prices change and differ by
 * region, so `prices` in the configuration overrides any of them (docs/cost.md).
 */
export interface PriceTable {
  /** The region the prices are for (a label in reports). */
  region: string;
  /** S3 GET and HEAD (and every other "GET class") request, per 1,000. */
  s3GetPer1000: number;
  /** S3 LIST (and PUT/COPY/POST) request, per 1,000. */
  s3ListPer1000: number;
  /** Bytes leaving S3, per GB (0 within one region, to Lambda and Fargate). */
  s3TransferPerGb: number;
  lambdaGbSecond: number;
  lambdaPerMillionRequests: number;
  fargateVcpuHour: number;
  fargateGbHour: number;
  /** Fargate ephemeral storage beyond the 20 GB included, per GB-hour. */
  fargateStorageGbHour: number;
  /** Step Functions standard workflow state transitions, per 1,000. */
  stepFunctionsPer1000: number;
}

export const DEFAULT_PRICES: PriceTable = {
  region: 'us-east-1',
  s3GetPer1000: 0.0004,
  s3ListPer1000: 0.005,
  s3TransferPerGb: 0,
  lambdaGbSecond: 0.0000166667,
  lambdaPerMillionRequests: 0.2,
  fargateVcpuHour: 0.04048,
  fargateGbHour: 0.004445,
  fargateStorageGbHour: 0.000111,
  stepFunctionsPer1000: 0.025,
};

/**
 * The sizes the stack deploys (lib/stacks/backup-validator-stack.ts), which turn durations into
 * GB-seconds; a test keeps the two in step.
 */
export const DEPLOYED_SIZES = {
  integrityLambdaMb: 3008,
  /** Discover, redundancy and report; the small functions are counted at this size too. */
  otherLambdaMb: 1024,
  sandboxVcpu: 2,
  sandboxMemoryGib: 8,
  sandboxStorageGib: 21,
  /** Ephemeral storage Fargate includes at no charge. */
  includedStorageGib: 20,
} as const;
