import { timestampMs, type PeerStatus } from '@tideline/core'

/** What `/metrics` is rendered from: one group's. */
export interface MetricsInput {
  /** A hosted group's id, added as the `group` label to its every sample; absent for the relay's main group. */
  readonly group?: string
  readonly status: PeerStatus
  readonly transport: Readonly<Record<string, number>>
  readonly connections: number
  readonly now: number
  readonly startedAt: number
}

/** Transport and protocol counters that count refused or broken input, exported as errors by kind. */
const ERROR_COUNTERS = [
  'junk', 'invalid', 'handler-error', 'refused-non-member', 'join-refused', 'hung-up-non-member', 'disconnected-for-junk',
  'gossip-non-member-dropped', 'gossip-unsigned-dropped', 'frames-dropped-send-failed', 'frames-dropped-backlog',
  'frames-dropped-unreachable', 'write-from-non-voter', 'write-not-own-refused', 'gap-from-non-voter', 'wm-not-own-refused',
  'batch-refused', 'ack-refused', 'clock-skew-refused', 'submit-refused', 'forged-batch', 'forwarded-unsigned', 'forwarded-shunned'
]

/** Prometheus text exposition (version 0.0.4) of a relay's groups: the main one unlabelled, each hosted one with its `group` label. */
export function renderMetrics (input: MetricsInput | readonly MetricsInput[]): string {
  const families = new Map<string, { type: string, help: string, samples: string[] }>()
  for (const m of Array.isArray(input) ? input as readonly MetricsInput[] : [input as MetricsInput]) {
    groupMetrics(m, (name, type, help, samples) => {
      let f = families.get(name)
      if (f === undefined) {
        f = { type, help, samples: [] }
        families.set(name, f)
      }
      for (const [labels, value] of samples) f.samples.push(`${name}${withGroup(labels, m.group)} ${Number.isFinite(value) ? value : 0}`)
    })
  }
  const out: string[] = []
  for (const [name, f] of families) out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...f.samples)
  return `${out.join('\n')}\n`
}

/** `{a="b"}` with `group="…"` added (a group id is [A-Za-z0-9._-]: nothing to escape). */
function withGroup (labels: string, group: string | undefined): string {
  if (group === undefined) return labels
  return labels === '' ? `{group="${group}"}` : `{group="${group}",${labels.slice(1)}`
}

type Metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[labels: string, value: number]>) => void

function groupMetrics (m: MetricsInput, metric: Metric): void {
  const s = m.status
  const all: Record<string, number> = { ...s.counters, ...m.transport }
  const wmMs = timestampMs(s.watermark)
  metric('tideline_up', 'gauge', '1 while the replica serves, 0 once its store failed.', [['', s.failed === undefined ? 1 : 0]])
  metric('tideline_epoch', 'gauge', 'Current configuration epoch.', [['', s.epoch]])
  metric('tideline_watermark_lag_ms', 'gauge', 'Wall clock minus the group watermark: how old the newest fixed timestamp is.', [['', wmMs === 0 ? 0 : Math.max(0, m.now - wmMs)]])
  metric('tideline_watermark_ms', 'gauge', 'The group watermark, as milliseconds since the Unix epoch.', [['', wmMs]])
  metric('tideline_txns_evaluated_total', 'counter', 'Transactions evaluated (committed or aborted) on this replica.', [['', s.evaluated]])
  metric('tideline_txns_coordinated_total', 'counter', 'Transactions this voter timestamped as coordinator.', [['', all.minted ?? 0]])
  metric('tideline_batches_coordinated_total', 'counter', 'Batches this voter sealed as coordinator (transactions coordinated / this = thunks per batch).', [['', all.batches ?? 0]])
  metric('tideline_batches_unevaluated', 'gauge', 'Batches held, not wholly evaluated: waiting for the watermark or a gap.', [['', s.unevaluated]])
  metric('tideline_batches_inflight', 'gauge', 'Batches this voter coordinates that are not yet acked by a quorum (and its open batch).', [['', s.inflight]])
  metric('tideline_gc_steps_total', 'counter', 'GC steps run below the horizon (the least durable frontier of the voters, less the retention window).', [['', all['gc-steps'] ?? 0]])
  metric('tideline_gc_removed_total', 'counter', 'Records GC removed, by kind.', [['{kind="batches"}', all['gc-batches-removed'] ?? 0], ['{kind="versions"}', all['gc-versions-removed'] ?? 0], ['{kind="records"}', all['gc-records-removed'] ?? 0]])
  metric('tideline_snapshots_total', 'counter', 'Snapshots this replica exported for others, and installed for itself.', [['{dir="served"}', all['snapshots-served'] ?? 0], ['{dir="installed"}', all['snapshots-installed'] ?? 0]])
  metric('tideline_sync_phase', 'gauge', 'Whether local reads are current: 1 for the phase this replica is in (snapshot, catching-up or live).', (['snapshot', 'catching-up', 'live'] as const).map(p => [`{phase="${p}"}`, s.sync.phase === p ? 1 : 0]))
  metric('tideline_sync_progress', 'gauge', 'Progress of the phase: snapshot items or batches received, and the total known.', [['{of="received"}', s.sync.received], ['{of="total"}', s.sync.total]])
  metric('tideline_peers_connected', 'gauge', 'Open libp2p connections.', [['', m.connections]])
  metric('tideline_gossip_messages_total', 'counter', 'Watermark gossip messages.', [['{dir="in"}', all['gossip-in'] ?? 0], ['{dir="out"}', all['gossip-out'] ?? 0]])
  metric('tideline_frames_total', 'counter', 'Direct-message frames.', [['{dir="in"}', all['frames-in'] ?? 0], ['{dir="out"}', all['frames-out'] ?? 0]])
  metric('tideline_messages_total', 'counter', 'Protocol messages sent directly (several share a frame).', [['{dir="out"}', all['messages-out'] ?? 0]])
  metric('tideline_bytes_total', 'counter', 'Bytes of direct-message frames (before Noise and muxing) and of watermark gossip published.', [['{dir="in"}', all['bytes-in'] ?? 0], ['{dir="out"}', all['bytes-out'] ?? 0], ['{dir="gossip-out"}', all['gossip-bytes-out'] ?? 0]])
  metric('tideline_joins_total', 'counter', 'Observers admitted with an invite.', [['', all.joined ?? 0]])
  metric('tideline_errors_total', 'counter', 'Refused, malformed or undeliverable input, by kind.', ERROR_COUNTERS.map(k => [`{kind="${k}"}`, all[k] ?? 0]))
  metric('tideline_events_total', 'counter', 'Every protocol and transport counter, by name (retransmits, gap requests, evaluated runs, ...).', Object.keys(all).sort().map(k => [`{event="${k}"}`, all[k] ?? 0]))
  metric('tideline_quiet', 'gauge', '1 while this voter is quiet: idle, its heartbeat stopped until work or a voter wakes it.', [['', s.quiet ? 1 : 0]])
  metric('tideline_uptime_seconds', 'gauge', 'Seconds since this relay started.', [['', Math.round((m.now - m.startedAt) / 1000)]])
}
