export async function handler(): Promise<never> {
  throw new Error('task-stopped handler not implemented yet');
}
