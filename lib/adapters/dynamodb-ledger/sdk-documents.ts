import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type {
  DocumentCommand,
  DocumentCommandKind,
  DocumentCommands,
  DocumentSender,
} from '../document-commands.ts';

interface LoadedClient {
  send(command: unknown): Promise<unknown>;
  commands: Record<string, unknown>;
  unmarshall(item: Record<string, unknown>): Record<string, unknown>;
}

/** The document commands sent to DynamoDB through the SDK's DocumentClient (loaded on first send). */
export class SdkDocuments implements DocumentSender {
  private doc: Promise<LoadedClient> | undefined;

  constructor(private readonly client: () => Promise<DynamoDBClient>) {}

  async send<K extends DocumentCommandKind>(command: DocumentCommand<K>): Promise<DocumentCommands[K][1]> {
    this.doc ??= (async () => {
      const [lib, util] = await Promise.all([
        import('@aws-sdk/lib-dynamodb'),
        import('@aws-sdk/util-dynamodb'),
      ]);
      const doc = lib.DynamoDBDocumentClient.from(await this.client(), {
        marshallOptions: { removeUndefinedValues: true },
      });
      return {
        send: (c: unknown) => doc.send(c as never),
        commands: lib as unknown as Record<string, unknown>,
        unmarshall: (item) => util.unmarshall(item as never),
      };
    })();
    const { send, commands, unmarshall } = await this.doc;
    const Command = commands[`${command.kind}Command`] as new (input: unknown) => unknown;
    try {
      return (await send(new Command(command.input))) as DocumentCommands[K][1];
    } catch (error) {
      // The DocumentClient leaves the item of a failed condition (ReturnValuesOnConditionCheckFailure) marshalled.
      const failed = error as { name?: unknown; Item?: Record<string, unknown> };
      if (failed?.name === 'ConditionalCheckFailedException' && failed.Item)
        failed.Item = unmarshall(failed.Item);
      throw error;
    }
  }
}
