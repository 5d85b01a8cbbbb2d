import type { RunOutcome } from '../../core/ledger.ts';
import { UpdateCommand } from '../document-commands.ts';
import { K } from './keys.ts';

/** Sets a started run's outcome (the condition fails for a run never started) and returns the new item. */
export function finishRunCommand(tableName: string, runId: string, outcome: RunOutcome, finishedAt: string) {
  return UpdateCommand({
    TableName: tableName,
    Key: { pk: K.run(runId), sk: K.runSk },
    UpdateExpression:
      (outcome.error === undefined
        ? 'SET #status = :status, finishedAt = :finishedAt, counts = :counts'
        : 'SET #status = :status, finishedAt = :finishedAt, counts = :counts, #error = :error') +
      (outcome.summary !== undefined ? ', summary = :summary' : '') +
      (outcome.error === undefined ? ' REMOVE #error' : ''),
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: { '#status': 'status', '#error': 'error' },
    ExpressionAttributeValues: {
      ':status': outcome.status,
      ':finishedAt': finishedAt,
      ':counts': outcome.counts,
      ...(outcome.error !== undefined ? { ':error': outcome.error } : {}),
      ...(outcome.summary !== undefined ? { ':summary': JSON.stringify(outcome.summary) } : {}),
    },
    ReturnValues: 'ALL_NEW',
  });
}
