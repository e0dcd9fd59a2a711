/**
 * The sink's singleton guard across hosts (docs/scaling.md "Hazards"): one warehouse has one
 * sink, but DuckDB's file lock only keeps a second writer out on the SAME host. A sink on another
 * host with the same topic prefix would join `<prefix>warehouse-sink`, take half the partitions
 * into its own DuckDB file, and leave both warehouses incomplete.
 *
 * Before it joins, the sink asks the broker for its group. While the group has live members it
 * waits (a sink killed with -9 stays a member until its 10 s session expires — the restart must
 * get through), and once `waitMs` has passed with members still there it refuses to start with
 * a ConflictError naming them (client id and host). Cheap, not a lease: two sinks that start
 * within the same instant can both see an empty group; that window is documented.
 */
import type { Admin } from 'kafkajs';
import { ConflictError } from '../../pipeline/errors.ts';

export interface SingletonGuardOptions {
  /** How long live members may stay before the sink refuses (default 15 s: session 10 s + margin). */
  waitMs?: number;
  everyMs?: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface GroupMemberView {
  clientId: string;
  clientHost: string;
}

/** Members of a group in a state that holds partitions (pure: the describeGroups answer in). */
export function liveMembers(group: { state: string; members: { clientId: string; clientHost: string }[] }): GroupMemberView[] {
  // Empty/Dead: nobody holds partitions. Every other state (Stable, PreparingRebalance,
  // CompletingRebalance, Unknown) has members that are, or are about to be, consuming.
  if (group.state === 'Empty' || group.state === 'Dead') return [];
  return group.members.map((m) => ({ clientId: m.clientId, clientHost: m.clientHost }));
}

export async function assertNoOtherSink(admin: Admin, groupId: string, opts: SingletonGuardOptions = {}): Promise<void> {
  const waitMs = opts.waitMs ?? 15_000;
  const everyMs = opts.everyMs ?? 500;
  const end = Date.now() + waitMs;
  let logged = false;
  for (;;) {
    const { groups } = await admin.describeGroups([groupId]);
    const live = groups[0] ? liveMembers(groups[0]) : [];
    if (live.length === 0) return;
    if (Date.now() >= end) {
      const who = live.map((m) => `${m.clientId} on ${m.clientHost}`).join(', ');
      throw new ConflictError(
        `another warehouse sink is running: consumer group ${groupId} has live member(s) ${who}. ` +
          'One sink per warehouse (docs/scaling.md): stop it, or give this deployment its own PENUMBRA_TOPIC_PREFIX.',
        { groupId, members: live },
      );
    }
    if (!logged) {
      opts.log?.('warehouse sink: its consumer group has live members; waiting for them to leave (a killed sink expires with its session)', { groupId, members: live, waitMs });
      logged = true;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
