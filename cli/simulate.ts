export async function simulateCli(_argv: string[]): Promise<number> {
  console.error("simulate: not wired yet");
  return 1;
}
