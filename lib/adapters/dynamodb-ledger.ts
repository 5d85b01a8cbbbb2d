/** The DynamoDB ledger; its parts (keys, items, table I/O, writes) live in ./dynamodb-ledger/. */
export { DynamoDbLedger, type DynamoDbLedgerOptions } from './dynamodb-ledger/ledger.ts';
