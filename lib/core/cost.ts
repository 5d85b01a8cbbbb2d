import type { RunCost } from './model.ts';
import { DEPLOYED_SIZES, type PriceTable } from './prices.ts';

export type Usage = RunCost['usage'];

/** Objects a ListObjectsV2 page returns. */
export const LIST_PAGE_OBJECTS = 1000;
/** Seconds a Fargate task is billed before the restore's own clock starts (image pull, start), planning figure. */
export const SANDBOX_STARTUP_SECONDS = 60;
/** Seconds billed for each small function invocation (select, redundancy, report, restore trigger), planning figure. */
export const SMALL_INVOCATION_SECONDS = 2;

export function emptyUsage(): Usage {
  return {
    s3GetRequests: 0,
    s3ListRequests: 0,
    s3HeadRequests: 0,
    s3BytesRead: 0,
    lambdaGbSeconds: 0,
    lambdaRequests: 0,
    fargateVcpuSeconds: 0,
    fargateGbSeconds: 0,
    fargateStorageGbSeconds: 0,
    stepFunctionsTransitions: 0,
  };
}

/** Requests of listing `objects` objects of an S3 source. */
export function listRequests(objects: number): number {
  return Math.max(1, Math.ceil(objects / LIST_PAGE_OBJECTS));
}

/** What the deployed pipeline's compute for a run comes to, from its shape and the seconds measured or planned. */
export interface ComputeShape {
  discoverSeconds: number;
  /** Seconds the integrity function spent reading, summed over backups. */
  integritySeconds: number;
  shards: number;
  /** Seconds restores took inside the sandbox, summed. */
  restoreSeconds: number;
  restores: number;
  /** Seconds the sandbox spent checking backups too large for a Lambda, and how many (each its own task). */
  sandboxIntegritySeconds?: number;
  sandboxIntegrities?: number;
}

/**
 * Lambda, Fargate and Step Functions usage of the deployed pipeline for a run of this shape: the
 * functions at the sizes the stack deploys, the sandbox billed from its start, and the state
 * transitions the definition makes (Discover, the maps, SelectRestores, Redundancy, Report, Verdict).
 */
export function addCompute(usage: Usage, shape: ComputeShape): Usage {
  const integrityGb = DEPLOYED_SIZES.integrityLambdaMb / 1024;
  const otherGb = DEPLOYED_SIZES.otherLambdaMb / 1024;
  const tasks = shape.restores + (shape.sandboxIntegrities ?? 0);
  const small = 3 + tasks; // select, redundancy, report, and one trigger per task
  const sandboxSeconds =
    shape.restoreSeconds + (shape.sandboxIntegritySeconds ?? 0) + tasks * SANDBOX_STARTUP_SECONDS;
  const extraStorage = Math.max(0, DEPLOYED_SIZES.sandboxStorageGib - DEPLOYED_SIZES.includedStorageGib);
  return {
    ...usage,
    lambdaGbSeconds:
      usage.lambdaGbSeconds +
      shape.discoverSeconds * otherGb +
      shape.integritySeconds * integrityGb +
      small * SMALL_INVOCATION_SECONDS * otherGb,
    lambdaRequests: usage.lambdaRequests + 1 + shape.shards + small,
    fargateVcpuSeconds: usage.fargateVcpuSeconds + sandboxSeconds * DEPLOYED_SIZES.sandboxVcpu,
    fargateGbSeconds: usage.fargateGbSeconds + sandboxSeconds * DEPLOYED_SIZES.sandboxMemoryGib,
    fargateStorageGbSeconds: usage.fargateStorageGbSeconds + sandboxSeconds * extraStorage,
    stepFunctionsTransitions: usage.stepFunctionsTransitions + 8 + 2 * shape.shards + 3 * tasks,
  };
}

const round = (dollars: number) => Math.round(dollars * 1e6) / 1e6;

/** The usage priced by the table: dollars by service and in total. */
export function priceUsage(usage: Usage, prices: PriceTable): RunCost['estimate'] {
  const s3 =
    ((usage.s3GetRequests + usage.s3HeadRequests) / 1000) * prices.s3GetPer1000 +
    (usage.s3ListRequests / 1000) * prices.s3ListPer1000 +
    (usage.s3BytesRead / 1e9) * prices.s3TransferPerGb;
  const lambda =
    usage.lambdaGbSeconds * prices.lambdaGbSecond +
    (usage.lambdaRequests / 1e6) * prices.lambdaPerMillionRequests;
  const fargate =
    (usage.fargateVcpuSeconds / 3600) * prices.fargateVcpuHour +
    (usage.fargateGbSeconds / 3600) * prices.fargateGbHour +
    (usage.fargateStorageGbSeconds / 3600) * prices.fargateStorageGbHour;
  const stepFunctions = (usage.stepFunctionsTransitions / 1000) * prices.stepFunctionsPer1000;
  return {
    s3: round(s3),
    lambda: round(lambda),
    fargate: round(fargate),
    stepFunctions: round(stepFunctions),
    total: round(s3 + lambda + fargate + stepFunctions),
  };
}

export function runCost(usage: Usage, prices: PriceTable, estimated: string[]): RunCost {
  return { region: prices.region, usage, estimate: priceUsage(usage, prices), estimated };
}

/** Dollars for people: cents to two places, smaller sums to four. */
export function humanDollars(dollars: number): string {
  return dollars >= 0.01 || dollars === 0 ? `$${dollars.toFixed(2)}` : `$${dollars.toFixed(4)}`;
}
