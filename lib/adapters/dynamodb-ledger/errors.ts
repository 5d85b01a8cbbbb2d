const NETWORK_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'];

/** What failed, where, and what to try, in the words a LedgerError gives the user. */
export function describeFailure(
  operation: string,
  error: unknown,
  tableName: string,
  location: string,
  endpointLabel: string,
): string {
  const name = error && typeof error === 'object' && 'name' in error ? String(error.name) : 'Error';
  const code = (error as { code?: string } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const where = `ledger ${location}`;
  if (name === 'ResourceNotFoundException') {
    return (
      `could not ${operation}: table "${tableName}" does not exist at ${endpointLabel}. ` +
      'Deploy the stack that creates it, check the region and endpoint, or use --ledger DIR for a local ledger'
    );
  }
  if (
    (code && NETWORK_CODES.includes(code)) ||
    name === 'TimeoutError' ||
    NETWORK_CODES.some((c) => message.includes(c)) ||
    /socket hang up|connect/i.test(message)
  ) {
    return (
      `could not ${operation}: the ${where} cannot be reached at ${endpointLabel} (${code ?? name}: ${message}). ` +
      'Check that the endpoint is up (AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL) and reachable'
    );
  }
  if (
    name === 'CredentialsProviderError' ||
    name === 'UnrecognizedClientException' ||
    name === 'InvalidSignatureException' ||
    name === 'ExpiredTokenException'
  ) {
    return `could not ${operation}: no valid AWS credentials for the ${where} (${name}: ${message}). Configure credentials for the account that holds the table`;
  }
  if (name === 'AccessDeniedException') {
    return `could not ${operation}: access to the ${where} was denied (${message}). The role needs read and write access to table "${tableName}" and its indexes`;
  }
  if (name === 'ProvisionedThroughputExceededException' || name === 'ThrottlingException') {
    return `could not ${operation}: the ${where} is throttling requests (${message}); run again later`;
  }
  return `could not ${operation} in the ${where}: ${name}: ${message}`;
}
