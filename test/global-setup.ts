// Placeholder until the local-stack global setup lands (helper owns this file).
export default async function setup(): Promise<void> {}
