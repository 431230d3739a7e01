/**
 * The `npm run bench` report: what a run writes to JSON, the targets of the performance
 * issue judged from it, and its markdown. Everything here works from the JSON alone, so a
 * report can be re-rendered (or re-judged) from a committed bench-*.json.
 */
import { formatCeilings, type CeilingsReport, type PgStoreRun } from './ceilings';
import type { LoadResult } from './load';

export type TargetId = 'T1' | 'T2' | 'T3' | 'T4' | 'T5' | 'T6';
export const TARGET_IDS: readonly TargetId[] = ['T1', 'T2', 'T3', 'T4', 'T5', 'T6'];

/**
 * When a rate step "keeps up": the same criteria the Socket.IO ceiling is judged by
 * (≥ 99% of the offered messages acked, p99 send→deliver ≤ 250 ms), plus a clean check.
 */
export const KEEPS_UP = { minAckedRatio: 0.99, maxDeliverP99Ms: 250 };

export interface RunRecord {
  /** Stable name the targets look runs up by, e.g. `T2.step.100`. */
  id: string;
  target: TargetId;
  label: string;
  startedAt: string;
  durationMs: number;
  result: LoadResult | null;
  /** Why runScenario rejected (the run could not be carried out at all). */
  error: string | null;
}

export interface BenchReport {
  kind: 'parley-bench';
  date: string;
  quick: boolean;
  argv: string[];
  box: { cpuModel: string; cores: number; kernel: string; node: string; memoryMiB: number; loadAverageAtStart: number[] };
  targetsRun: TargetId[];
  ceilings: CeilingsReport | null;
  ceilingsError: string | null;
  runs: RunRecord[];
  /** Filled in by evaluateTargets once every run is done. */
  targets: TargetRow[];
  /** Ladders and runs left out because the time budget ran out, and similar notes. */
  notes: string[];
  durationMs: number;
}

export interface TargetRow {
  id: string;
  target: string;
  parley: string;
  ceiling: string;
  ratio: string;
  required: string;
  /** null: could not be measured (a run failed, a ceiling is missing). */
  met: boolean | null;
  /** Why it is not met or not measured, or what the figure rests on. */
  note: string;
  values: { parley: number | null; ceiling: number | null; ratio: number | null };
}

// ---------------------------------------------------------------------------------------
// Figures derived from a LoadResult.

/** lost, duplicates, unexpected pushes, duplicate acks and seq gaps all zero, everyone connected. */
export function checkClean(result: LoadResult): boolean {
  const c = result.check;
  return (
    c.lost === 0 &&
    c.duplicates === 0 &&
    c.unexpected === 0 &&
    c.duplicateAcks === 0 &&
    (c.seqGaps ?? 0) === 0 &&
    result.clients.connected === result.clients.requested
  );
}

export function checkText(result: LoadResult): string {
  const c = result.check;
  const problems: string[] = [];
  if (result.clients.connected !== result.clients.requested) problems.push(`${result.clients.requested - result.clients.connected} not connected`);
  if (c.lost) problems.push(`${c.lost} lost`);
  if (c.duplicates) problems.push(`${c.duplicates} duplicates`);
  if (c.unexpected) problems.push(`${c.unexpected} unexpected`);
  if (c.duplicateAcks) problems.push(`${c.duplicateAcks} duplicate acks`);
  if (c.seqGaps) problems.push(`${c.seqGaps} seq gaps`);
  return problems.length ? `FAILED: ${problems.join(', ')}` : 'ok';
}

/** Whether a rate step kept up with what it offered (see KEEPS_UP). */
export function keptUp(result: LoadResult): boolean {
  const p99 = result.latency.sendToDeliverMs.p99;
  return (
    checkClean(result) &&
    result.offered.scheduled > 0 &&
    result.sends.acked >= KEEPS_UP.minAckedRatio * result.offered.scheduled &&
    result.sends.timedOut === 0 &&
    p99 !== null &&
    p99 <= KEEPS_UP.maxDeliverP99Ms
  );
}

/**
 * Acks (or deliveries) per second while sending. The result's own per-second figures
 * divide by the whole measured window, which runs on to the end of the drain (at least
 * the 1 s quiet period): for a 5 s step that understates a sustained rate by a sixth.
 * For a run that kept up, the pushes counted in the window belong to the sending window,
 * so they are divided by its length; for one that fell behind, the backlog drains after
 * sending stops, and the whole window is the honest divisor.
 */
export function sustained(result: LoadResult, what: 'acks' | 'deliveries'): number | null {
  const windowSeconds = result.deliveries.windowSeconds;
  const inWindow = what === 'deliveries' ? result.deliveries.inWindow : (result.sends.ackedPerSecond ?? 0) * windowSeconds;
  if (!(windowSeconds > 0)) return null;
  const divisor = keptUp(result) && result.offered.durationSeconds > 0 ? Math.min(windowSeconds, result.offered.durationSeconds) : windowSeconds;
  return inWindow / divisor;
}

// ---------------------------------------------------------------------------------------
// The targets.

const thousands = (value: number | null | undefined) => (value === null || value === undefined ? '-' : Math.round(value).toLocaleString('en-US'));
const fixed = (value: number | null | undefined, digits = 2) => (value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));
const ratioOf = (a: number | null, b: number | null) => (a === null || b === null || b <= 0 ? null : a / b);

export function stepsOf(report: BenchReport, prefix: string): Array<RunRecord & { rate: number }> {
  return report.runs
    .filter((run) => run.id.startsWith(`${prefix}.step.`))
    .map((run) => ({ ...run, rate: Number(run.id.slice(prefix.length + 6)) }))
    .sort((a, b) => a.rate - b.rate);
}

/** The fan-out ladder's best kept-up step (Parley's maximum), or null. */
export function bestFanoutStep(report: BenchReport): (RunRecord & { rate: number; deliveriesPerSecond: number }) | null {
  let best: (RunRecord & { rate: number; deliveriesPerSecond: number }) | null = null;
  for (const step of stepsOf(report, 'T2')) {
    if (!step.result || !keptUp(step.result)) continue;
    const deliveriesPerSecond = sustained(step.result, 'deliveries') ?? 0;
    if (!best || deliveriesPerSecond > best.deliveriesPerSecond) best = { ...step, deliveriesPerSecond };
  }
  return best;
}

/** The persisted-chat ladder's best stored-and-delivered messages/s over clean steps, or null. */
export function bestChatStep(report: BenchReport): (RunRecord & { rate: number; messagesPerSecond: number }) | null {
  let best: (RunRecord & { rate: number; messagesPerSecond: number }) | null = null;
  for (const step of stepsOf(report, 'T3')) {
    if (!step.result || !checkClean(step.result)) continue;
    const messagesPerSecond = sustained(step.result, 'acks') ?? 0;
    if (!best || messagesPerSecond > best.messagesPerSecond) best = { ...step, messagesPerSecond };
  }
  return best;
}

function bestPg(runs: PgStoreRun[] | undefined, layout: 'spread' | 'hot', prefer?: PgStoreRun['variant']): PgStoreRun | null {
  const candidates = (runs ?? []).filter((run) => run.layout === layout && run.errors === 0 && run.gapless);
  if (prefer) {
    const preferred = candidates.find((run) => run.variant === prefer);
    if (preferred) return preferred;
  }
  return candidates.reduce<PgStoreRun | null>((best, run) => (!best || run.transactionsPerSecond > best.transactionsPerSecond ? run : best), null);
}

interface RowSpec {
  id: string;
  target: string;
  parley: number | null;
  parleyText?: string;
  ceiling?: number | null;
  ceilingText?: string;
  required: string;
  /** Judges the figure (and the ratio, when there is a ceiling). */
  pass: (parley: number, ratio: number | null) => boolean;
  /** The run the figure comes from: a failed check or error makes the row not met. */
  from: Array<RunRecord | undefined>;
  note?: string;
  ratioIsRequired?: boolean;
  ratioDigits?: number;
}

function row(spec: RowSpec): TargetRow {
  const ratio = spec.ceiling === undefined ? null : ratioOf(spec.parley, spec.ceiling);
  const notes: string[] = spec.note ? [spec.note] : [];
  let met: boolean | null;
  const missing = spec.from.filter((run) => !run);
  const errored = spec.from.filter((run) => run?.error);
  const unclean = spec.from.filter((run) => run?.result && !checkClean(run.result));
  if (missing.length || errored.length) {
    met = null;
    for (const run of errored) notes.push(`${run!.id} did not run: ${run!.error!.split('\n')[0]}`);
    if (missing.length) notes.push('its run is missing (time budget or an earlier failure)');
  } else if (spec.parley === null) {
    met = null;
    notes.push('no figure (see the run)');
  } else if (spec.ratioIsRequired && ratio === null) {
    met = null;
    notes.push('the same-run ceiling is missing');
  } else {
    met = spec.pass(spec.parley, ratio);
    for (const run of unclean) {
      met = false;
      notes.push(`${run!.id}: check ${checkText(run!.result!)}`);
    }
  }
  return {
    id: spec.id,
    target: spec.target,
    parley: spec.parleyText ?? fixed(spec.parley),
    ceiling: spec.ceilingText ?? (spec.ceiling === undefined ? '—' : fixed(spec.ceiling)),
    ratio: ratio === null ? '—' : `${ratio.toFixed(spec.ratioDigits ?? 2)}×`,
    required: spec.required,
    met,
    note: notes.join('; '),
    values: { parley: spec.parley, ceiling: spec.ceiling ?? null, ratio },
  };
}

/** Judges each target of the performance issue that this run measured. */
export function evaluateTargets(report: BenchReport): TargetRow[] {
  const run = (id: string) => report.runs.find((record) => record.id === id);
  const ran = new Set(report.targetsRun);
  const c = report.ceilings;
  const rows: TargetRow[] = [];

  if (ran.has('T1')) {
    // The one-gateway run may be repeated (T1.idle.1gw, T1.idle.1gw.2, ...): the median run counts.
    const repeats = report.runs.filter((record) => record.id === 'T1.idle.1gw' || record.id.startsWith('T1.idle.1gw.'));
    const perConnectionOf = (record: RunRecord) => record.result?.figures.gatewayRssPerConnectionBytes ?? null;
    const measured = repeats.filter((record) => perConnectionOf(record) !== null).sort((a, b) => perConnectionOf(a)! - perConnectionOf(b)!);
    const one = measured.length ? measured[Math.floor((measured.length - 1) / 2)] : repeats[0];
    const samples = measured.length > 1 ? `median of ${measured.length} runs (${measured.map((record) => fixed(perConnectionOf(record)! / 1024)).join(', ')} KiB); ` : '';
    const spread = run('T1.idle.3gw');
    const ws = c?.memory?.runs.find((r) => r.server === 'ws') ?? null;
    const sio = c?.memory?.runs.find((r) => r.server === 'socketio') ?? null;
    const perConnection = one?.result?.figures.gatewayRssPerConnectionBytes;
    const kib = perConnection === null || perConnection === undefined ? null : perConnection / 1024;
    rows.push(
      row({
        id: 'T1a',
        target: `Idle RSS per connection, ${thousands(one?.result?.clients.connected)} connections on 1 gateway`,
        parley: kib,
        parleyText: `${fixed(kib)} KiB`,
        ceiling: ws?.perConnectionKiB ?? null,
        ceilingText: ws
          ? `bare ws ${fixed(ws.perConnectionKiB)} KiB at ${thousands(ws.connections)}${sio ? ` (Socket.IO ${fixed(sio.perConnectionKiB)} KiB at ${thousands(sio.connections)})` : ''}`
          : 'missing',
        required: '≤ 1.5× bare ws',
        pass: (_parley, ratio) => ratio !== null && ratio <= 1.5,
        ratioIsRequired: true,
        from: repeats.length ? repeats : [undefined],
        note: samples + (one?.result?.figures.gatewayRssAfterGc
          ? `both after a full GC (Parley: RSS slope from the first tenth to all clients; before the GC ${fixed((one.result.figures.gatewayRssPerConnectionBeforeGcBytes ?? NaN) / 1024)} KiB); bare ws: RSS growth`
          : 'Parley: RSS slope from the first tenth to all clients, no GC; bare ws: RSS growth after a full GC'),
      }),
    );
    const r = spread?.result;
    rows.push(
      row({
        id: 'T1b',
        target: `${thousands(r?.clients.requested)} idle connections over ${r?.options.gateways ?? 3} gateways`,
        parley: r ? r.clients.connected : null,
        parleyText: r ? `${thousands(r.clients.connected)} / ${thousands(r.clients.requested)} connected` : '-',
        required: 'all connected',
        pass: () => !!r && r.clients.connected === r.clients.requested,
        from: [spread],
        note: r && Object.keys(r.clients.failed).length ? `failed: ${JSON.stringify(r.clients.failed)}` : '',
      }),
    );
  }

  if (ran.has('T2')) {
    const best = bestFanoutStep(report);
    const steps = stepsOf(report, 'T2');
    const final = run('T2.at-80pct');
    const wsCoalesced = c?.ws?.runs.find((r) => r.mode === 'coalesced') ?? null;
    const sio = c?.socketio ?? null;
    const members = steps[0]?.result?.options.groupSize;
    const noStep = steps.length > 0 && !best ? 'no rate step kept up' : undefined;
    rows.push(
      row({
        id: 'T2a',
        target: `Fan-out deliveries/s, group of ${thousands(members)} over 3 gateways (best kept-up step)`,
        parley: best ? best.deliveriesPerSecond : steps.length ? 0 : null,
        parleyText: best ? `${thousands(best.deliveriesPerSecond)}/s (${best.rate} msg/s)` : noStep ?? '-',
        ceiling: wsCoalesced?.deliveriesPerSecond ?? null,
        ceilingText: wsCoalesced ? `bare ws coalesced ${thousands(wsCoalesced.deliveriesPerSecond)}/s (${wsCoalesced.members} members)` : 'missing',
        required: '≥ 0.5× bare ws coalesced',
        pass: (_parley, ratio) => ratio !== null && ratio >= 0.5,
        ratioIsRequired: true,
        from: best ? [best] : steps.length ? [] : [undefined],
        ...(noStep ? { note: noStep } : {}),
      }),
    );
    const p99 = final?.result?.latency.sendToDeliverMs.p99 ?? null;
    rows.push(
      row({
        id: 'T2b',
        target: `Fan-out p99 send→deliver at 80% of Parley's maximum${final?.result ? ` (${final.result.offered.ratePerSecond} msg/s)` : ''}`,
        parley: p99,
        parleyText: `${fixed(p99, 1)} ms`,
        required: '≤ 100 ms',
        pass: (value) => value <= 100,
        from: [final],
        ...(!best && steps.length ? { note: 'not run: no rate step kept up' } : {}),
      }),
    );
    rows.push(
      row({
        id: 'T2c',
        target: 'Fan-out deliveries/s against Socket.IO + Redis adapter (2 processes)',
        parley: best ? best.deliveriesPerSecond : steps.length ? 0 : null,
        parleyText: best ? `${thousands(best.deliveriesPerSecond)}/s` : noStep ?? '-',
        ceiling: sio && sio.highestKeptUp ? sio.deliveriesPerSecond : null,
        ceilingText: sio ? (sio.highestKeptUp ? `Socket.IO ${thousands(sio.deliveriesPerSecond)}/s kept up (${sio.members} members, p99 ${fixed(sio.p99Ms, 0)} ms)` : 'Socket.IO kept up with no step') : 'missing',
        required: '≥ 3× Socket.IO',
        pass: (_parley, ratio) => ratio !== null && ratio >= 3,
        ratioIsRequired: true,
        from: best ? [best] : steps.length ? [] : [undefined],
        ...(noStep ? { note: noStep } : {}),
      }),
    );
  }

  if (ran.has('T3')) {
    const best = bestChatStep(report);
    const steps = stepsOf(report, 'T3');
    const pg = bestPg(c?.pg?.runs, 'spread');
    const users = steps[0]?.result?.clients.requested;
    const parley = best ? best.messagesPerSecond : steps.length ? 0 : null;
    const from = best ? [best] : steps.length ? [] : [undefined];
    const kept = best?.result && keptUp(best.result) ? 'kept up' : 'saturated';
    const parleyText = best ? `${thousands(best.messagesPerSecond)} msg/s (${best.rate}/s offered, ${kept})` : steps.length ? 'no clean step' : '-';
    rows.push(
      row({
        id: 'T3a',
        target: `Persisted 1:1 chat, ${thousands(users)} users: stored and delivered messages/s`,
        parley,
        parleyText,
        required: '≥ 5,000 msg/s',
        pass: (value) => value >= 5000,
        from,
      }),
    );
    rows.push(
      row({
        id: 'T3b',
        target: 'Persisted chat against the storing transaction on PostgreSQL',
        parley,
        parleyText,
        ceiling: pg?.transactionsPerSecond ?? null,
        ceilingText: pg ? `pg ${pg.variant}, ${thousands(pg.conversations)} conversations: ${thousands(pg.transactionsPerSecond)} tx/s` : 'missing',
        required: '≥ 0.5× pg (best variant)',
        pass: (_parley, ratio) => ratio !== null && ratio >= 0.5,
        ratioIsRequired: true,
        from,
        note: 'the ceiling is the best of the pg-store variants over the spread layout',
      }),
    );
  }

  if (ran.has('T4')) {
    const latency = run('T4.chat');
    const r = latency?.result;
    const at = r ? ` at ${thousands(r.offered.ratePerSecond)} msg/s, ${thousands(r.clients.requested)} users` : '';
    rows.push(
      row({ id: 'T4a', target: `send→ack p50${at}`, parley: r?.latency.sendToAckMs.p50 ?? null, parleyText: `${fixed(r?.latency.sendToAckMs.p50)} ms`, required: '≤ 3 ms', pass: (v) => v <= 3, from: [latency] }),
      row({ id: 'T4b', target: `send→ack p99${at}`, parley: r?.latency.sendToAckMs.p99 ?? null, parleyText: `${fixed(r?.latency.sendToAckMs.p99)} ms`, required: '≤ 15 ms', pass: (v) => v <= 15, from: [latency] }),
      row({
        id: 'T4c',
        target: `send→deliver p99${at}`,
        parley: r?.latency.sendToDeliverMs.p99 ?? null,
        parleyText: `${fixed(r?.latency.sendToDeliverMs.p99)} ms`,
        required: '≤ 20 ms',
        pass: (v) => v <= 20,
        from: [latency],
      }),
    );
  }

  if (ran.has('T5')) {
    const hot = run('T5.hot');
    const r = hot?.result;
    const pg = bestPg(c?.pg?.runs, 'hot', 'four-statement');
    const acked = r ? sustained(r, 'acks') : null;
    const label = r ? `, ${r.offered.senders} senders, ${thousands(r.offered.ratePerSecond)}/s offered` : '';
    rows.push(
      row({ id: 'T5a', target: `Hot group${label}: acked messages/s`, parley: acked, parleyText: `${thousands(acked)} msg/s`, required: '≥ 2,000 msg/s', pass: (v) => v >= 2000, from: [hot] }),
      row({
        id: 'T5b',
        target: 'Hot group against the per-message transaction on one hot conversation',
        parley: acked,
        parleyText: `${thousands(acked)} msg/s`,
        ceiling: pg?.transactionsPerSecond ?? null,
        ceilingText: pg ? `pg ${pg.variant}, hot: ${thousands(pg.transactionsPerSecond)} tx/s` : 'missing',
        required: '≥ 1× pg hot',
        pass: (_parley, ratio) => ratio !== null && ratio >= 1,
        ratioIsRequired: true,
        from: [hot],
      }),
      row({
        id: 'T5c',
        target: 'Hot group: seq gaps',
        parley: r?.check.seqGaps ?? null,
        parleyText: String(r?.check.seqGaps ?? '-'),
        required: '0',
        pass: (v) => v === 0,
        from: [hot],
      }),
    );
  }

  if (ran.has('T6')) {
    const connect = run('T6.connect');
    const reconnect = run('T6.reconnect');
    const cr = connect?.result;
    const rr = reconnect?.result;
    const bare = c?.connect;
    rows.push(
      row({
        id: 'T6a',
        target: `New authenticated connections/s through nginx (${thousands(cr?.clients.requested)} users)`,
        parley: cr?.clients.connectsPerSecond ?? null,
        parleyText: `${thousands(cr?.clients.connectsPerSecond)}/s`,
        ceiling: bare?.connectsPerSecond ?? null,
        ceilingText: bare ? `bare upgrade servers behind the same nginx: ${thousands(bare.connectsPerSecond)}/s` : 'missing',
        required: '≥ 2,000/s',
        pass: (v) => v >= 2000,
        from: [connect],
        note: bare
          ? `CPU s per 1,000 connections in the ceiling: generator ${fixed(bare.cpuSecondsPer1000Connections.loadgen, 2)}, nginx ${fixed(bare.cpuSecondsPer1000Connections.nginx, 2)}, bare servers ${fixed(bare.cpuSecondsPer1000Connections.servers, 2)}`
          : '',
      }),
    );
    const x = rr?.reconnect;
    const caughtUpNote =
      x && x.allCaughtUpMs === null ? `not all caught up: dropped ${x.dropped}, reconnected ${x.reconnected}, caught up ${x.caughtUp}, sync errors ${x.syncErrors}` : '';
    rows.push(
      row({
        id: 'T6b',
        target: `Gateway killed under ${thousands(rr?.clients.requested)} clients: all reconnected and caught up`,
        parley: x ? (x.allCaughtUpMs === null ? Infinity : x.allCaughtUpMs / 1000) : null,
        parleyText: x ? (x.allCaughtUpMs === null ? 'not all caught up' : `${fixed(x.allCaughtUpMs / 1000)} s (${thousands(x.dropped)} dropped)`) : '-',
        required: '≤ 10 s',
        pass: (v) => v <= 10 && (x?.dropped ?? 0) > 0,
        from: [reconnect],
        note: caughtUpNote,
      }),
    );
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Markdown.

const metText = (met: boolean | null) => (met === true ? 'yes' : met === false ? '**NO**' : '**not measured**');
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const ms = (value: number | null) => (value === null ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1));
const pcts = (p: LoadResult['latency']['sendToAckMs']) => (p.count === 0 ? '-' : `${ms(p.p50)} / ${ms(p.p90)} / ${ms(p.p99)}`);
const record = (values: Record<string, number>) =>
  Object.keys(values).length === 0
    ? 'none'
    : Object.entries(values)
        .map(([key, value]) => `${key} ${value}`)
        .join(', ');

function runDetails(run: RunRecord): string[] {
  const lines = [`### ${run.id}: ${run.label}`, ''];
  const r = run.result;
  if (!r) {
    lines.push(`Did not run: \`${(run.error ?? 'unknown').split('\n')[0]}\``, '');
    return lines;
  }
  const f = r.figures;
  const cpuD = f.cpuSecondsPer1000Deliveries;
  const cpuC = f.cpuSecondsPer1000Connections;
  const stepped = run.id.includes('.step.') || run.id.endsWith('at-80pct');
  lines.push(
    `- check: **${checkText(r)}** — expected ${thousands(r.check.expected)}, lost ${r.check.lost}, duplicates ${r.check.duplicates}, unexpected ${r.check.unexpected}, duplicate acks ${r.check.duplicateAcks}, seq gaps ${r.check.seqGaps ?? '-'}, stored ${thousands(r.check.stored)}`,
    `- clients: ${thousands(r.clients.connected)} / ${thousands(r.clients.requested)} connected via ${r.clients.via} over ${r.options.gateways} gateway(s), ${r.clients.workers} worker(s), ${r.clients.sourceAddresses} source addresses; ${thousands(r.clients.connectsPerSecond)} connections/s, connect p50/p90/p99 ${pcts(r.clients.connectMs)} ms${Object.keys(r.clients.failed).length ? `; failed: ${record(r.clients.failed)}` : ''}`,
  );
  if (r.offered.scheduled > 0) {
    lines.push(
      `- offered: ${thousands(r.offered.ratePerSecond)} msg/s for ${r.offered.durationSeconds} s (+${r.offered.warmupSeconds} s warm-up) from ${thousands(r.offered.senders)} sender(s); sent ${thousands(r.sends.sent)}, acked ${thousands(r.sends.acked)} (${thousands(r.sends.ackedPerSecond)}/s over the window, ${thousands(sustained(r, 'acks'))}/s sustained), failed ${record(r.sends.failed)}, timed out ${r.sends.timedOut}, not sent ${record(r.sends.notSent)}${stepped ? `; ${keptUp(r) ? 'kept up' : '**did not keep up**'}` : ''}`,
      `- send→ack p50 / p90 / p99: ${pcts(r.latency.sendToAckMs)} ms (max ${ms(r.latency.sendToAckMs.max)})`,
      `- send→deliver p50 / p90 / p99: ${pcts(r.latency.sendToDeliverMs)} ms (max ${ms(r.latency.sendToDeliverMs.max)})`,
      `- schedule lag p99: ${ms(r.latency.scheduleLagMs.p99)} ms`,
      `- deliveries: ${thousands(r.deliveries.total)}; ${thousands(r.deliveries.perSecond)}/s over the ${fixed(r.deliveries.windowSeconds, 1)} s window, ${thousands(sustained(r, 'deliveries'))}/s sustained`,
      `- CPU s per 1,000 deliveries: server ${fixed(cpuD.server, 4)} (gateways ${fixed(cpuD.gateways, 4)}, message ${fixed(cpuD.message, 4)}, nginx ${fixed(cpuD.nginx, 4)}, redis ${fixed(cpuD.redis, 4)}, postgres ${fixed(cpuD.postgres, 4)}); load generator ${fixed(f.cpuSeconds.loadgen)} CPU s in the window`,
      `- Redis commands per message: ${fixed(f.redis.perMessage)} (${record(f.redis.commands)}); PostgreSQL transactions per message: ${fixed(f.postgres.perMessage)}${f.postgres.settleMs > 0 ? ' (exact: statistics settled)' : ' (approximate)'}`,
    );
  } else if (cpuC) {
    lines.push(
      `- CPU s per 1,000 connections: server ${fixed(cpuC.server, 3)} (gateways ${fixed(cpuC.gateways, 3)}, message ${fixed(cpuC.message, 3)}, nginx ${fixed(cpuC.nginx, 3)})`,
    );
  }
  lines.push(
    `- gateway RSS per connection${f.gatewayRssAfterGc ? ` after a full GC (before it ${fixed((f.gatewayRssPerConnectionBeforeGcBytes ?? NaN) / 1024)} KiB)` : ''}: ${f.gatewayRssPerConnectionBytes === null ? '-' : `${fixed(f.gatewayRssPerConnectionBytes / 1024)} KiB`} (${f.gateways
      .map((g) => `${g.nodeId ?? g.pid}: ${thousands(g.connections)} connections, ${g.rssPerConnectionBytes === null ? '-' : `${fixed(g.rssPerConnectionBytes / 1024)} KiB`}, RSS ${thousands((g.rssConnectedBytes ?? 0) / 1048576)} MiB`)
      .join('; ')})`,
  );
  if (r.reconnect) {
    const x = r.reconnect;
    lines.push(
      `- reconnect: killed ${x.killedNodeId ?? '?'} at ${x.killedAtSeconds} s; dropped ${thousands(x.dropped)}, reconnected ${thousands(x.reconnected)}, caught up ${thousands(x.caughtUp)}, sync errors ${x.syncErrors}; all caught up ${x.allCaughtUpMs === null ? '**never**' : `${fixed(x.allCaughtUpMs / 1000)} s`} after the kill; reconnect p50/p90/p99 ${pcts(x.reconnectMs)} ms, caught up p50/p90/p99 ${pcts(x.caughtUpMs)} ms; failed reconnect attempts ${Object.keys(x.failedAttempts).length === 0 ? 'none' : JSON.stringify(x.failedAttempts)}`,
    );
  }
  const m = f.gatewayMetrics;
  if ((m.eventDrops ?? 0) > 0 || (m.slowConsumerCloses ?? 0) > 0 || (m.busResyncs ?? 0) > 0) {
    lines.push(`- gateway metrics: event drops ${m.eventDrops}, slow-consumer closes ${m.slowConsumerCloses}, bus resyncs ${m.busResyncs}`);
  }
  if (Object.keys(r.closes).length) lines.push(`- unexpected closes: ${record(r.closes)}`);
  for (const warning of r.warnings) lines.push(`- warning: ${warning}`);
  lines.push(`- phases: seed ${r.phases.seedMs} ms, connect ${r.phases.connectMs} ms, send ${r.phases.sendMs} ms, drain ${r.phases.drainMs} ms; load average at start ${r.box.loadAverage.join(' ')}`, '');
  return lines;
}

export function formatMarkdown(report: BenchReport): string {
  const b = report.box;
  const lines = [
    `# Parley benchmark${report.quick ? ' (quick smoke run: sizes far below the targets, not a measurement of them)' : ''}, ${report.date}`,
    '',
    `- box: ${b.cores} × ${b.cpuModel}, ${thousands(b.memoryMiB)} MiB, Linux ${b.kernel}, Node ${b.node}; load average at start ${b.loadAverageAtStart.join(' ')}`,
    `- command: \`npm run bench${report.argv.length ? ` -- ${report.argv.join(' ')}` : ''}\`; took ${(report.durationMs / 60_000).toFixed(1)} min`,
    `- every Parley figure comes from a fresh topology (new database, private redis-server, nginx, message service, gateways) started for that run alone; the ceilings ran first, in the same run, on the same box`,
    '',
    '## Targets',
    '',
    '| # | target | Parley | same-run ceiling | ratio | required | met | note |',
    '|---|---|---|---|---|---|---|---|',
    ...report.targets.map(
      (t) => `| ${t.id} | ${cell(t.target)} | ${cell(t.parley)} | ${cell(t.ceiling)} | ${t.ratio} | ${cell(t.required)} | ${metText(t.met)} | ${cell(t.note)} |`,
    ),
    '',
  ];
  const unmet = report.targets.filter((t) => t.met !== true);
  if (unmet.length) {
    lines.push(
      `**Not met (${unmet.length} of ${report.targets.length}):** ${unmet.map((t) => `${t.id} (${t.met === null ? 'not measured' : `${t.parley} against ${t.required}`})`).join('; ')}.`,
      '',
    );
  } else if (report.targets.length) {
    lines.push(`All ${report.targets.length} targets measured here are met.`, '');
  }
  for (const note of report.notes) lines.push(`- note: ${note}`);
  if (report.notes.length) lines.push('');

  lines.push(
    '## Runs',
    '',
    `Rate steps keep up when ≥ ${KEEPS_UP.minAckedRatio * 100}% of the offered messages are acked, none times out, p99 send→deliver ≤ ${KEEPS_UP.maxDeliverP99Ms} ms and the check is clean (the Socket.IO ceiling's criteria). "Sustained" rates divide by the sending window for runs that kept up, by the whole window (to the end of the drain) otherwise. Latencies in ms (p50 / p90 / p99).`,
    '',
    '| run | scenario | gateways | connected | offered/s | acked/s sustained | send→ack | send→deliver | deliveries/s sustained | lost | duplicates | seq gaps | check |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const run of report.runs) {
    const r = run.result;
    if (!r) {
      lines.push(`| ${run.id} | — | — | — | — | — | — | — | — | — | — | — | **did not run** |`);
      continue;
    }
    const sends = r.offered.scheduled > 0;
    lines.push(
      `| ${run.id} | ${r.scenario} | ${r.options.gateways} | ${thousands(r.clients.connected)} / ${thousands(r.clients.requested)} | ${sends ? thousands(r.offered.ratePerSecond) : '—'} | ${sends ? thousands(sustained(r, 'acks')) : '—'} | ${sends ? pcts(r.latency.sendToAckMs) : '—'} | ${sends ? pcts(r.latency.sendToDeliverMs) : '—'} | ${sends ? thousands(sustained(r, 'deliveries')) : '—'} | ${r.check.lost} | ${r.check.duplicates} | ${r.check.seqGaps ?? '—'} | ${checkClean(r) ? 'ok' : `**${checkText(r)}**`} |`,
    );
  }
  lines.push('', '## Run details', '');
  for (const run of report.runs) lines.push(...runDetails(run));

  lines.push('## Same-run ceilings', '');
  if (report.ceilings) lines.push('```', formatCeilings(report.ceilings), '```', '');
  if (report.ceilingsError) lines.push(`The ceilings failed: \`${report.ceilingsError.split('\n')[0]}\``, '');
  if (!report.ceilings && !report.ceilingsError) lines.push('None measured in this run (not needed by the targets selected).', '');
  return `${lines.join('\n')}\n`;
}
