export async function handler(): Promise<never> {
  throw new Error('restore-trigger handler not implemented yet');
}
