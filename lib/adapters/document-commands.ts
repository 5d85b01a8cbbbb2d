import type {
  BatchGetCommandInput,
  BatchGetCommandOutput,
  BatchWriteCommandInput,
  BatchWriteCommandOutput,
  DeleteCommandInput,
  DeleteCommandOutput,
  GetCommandInput,
  GetCommandOutput,
  PutCommandInput,
  PutCommandOutput,
  QueryCommandInput,
  QueryCommandOutput,
  ScanCommandInput,
  ScanCommandOutput,
  UpdateCommandInput,
  UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';

/**
 * The DocumentClient commands the ledger sends, as plain data: the SDK (a quarter of a second
 * to load) is loaded only by a sender that talks to DynamoDB, never by the embedded ledger.
 */
export interface DocumentCommands {
  Get: [GetCommandInput, GetCommandOutput];
  Put: [PutCommandInput, PutCommandOutput];
  Update: [UpdateCommandInput, UpdateCommandOutput];
  Delete: [DeleteCommandInput, DeleteCommandOutput];
  Query: [QueryCommandInput, QueryCommandOutput];
  Scan: [ScanCommandInput, ScanCommandOutput];
  BatchGet: [BatchGetCommandInput, BatchGetCommandOutput];
  BatchWrite: [BatchWriteCommandInput, BatchWriteCommandOutput];
}
export type DocumentCommandKind = keyof DocumentCommands;

export interface DocumentCommand<K extends DocumentCommandKind = DocumentCommandKind> {
  kind: K;
  input: DocumentCommands[K][0];
}

/** Where the ledger's document commands go: DynamoDB through the SDK, or the embedded SQLite table. */
export interface DocumentSender {
  send<K extends DocumentCommandKind>(command: DocumentCommand<K>): Promise<DocumentCommands[K][1]>;
}

const command =
  <K extends DocumentCommandKind>(kind: K) =>
  (input: DocumentCommands[K][0]): DocumentCommand<K> => ({ kind, input });

export const GetCommand = command('Get');
export const PutCommand = command('Put');
export const UpdateCommand = command('Update');
export const DeleteCommand = command('Delete');
export const QueryCommand = command('Query');
export const ScanCommand = command('Scan');
export const BatchGetCommand = command('BatchGet');
export const BatchWriteCommand = command('BatchWrite');
