/** A tiny timing harness: warm up, then time batches until the budget is spent. */
import { performance } from 'node:perf_hooks';

export interface Timing {
  /** Mean nanoseconds per call. */
  nsPerOp: number;
  opsPerSec: number;
  iterations: number;
}

/** Keeps results alive so the JIT cannot drop the measured work. */
export let sink: unknown;

/**
 * Time `fn` on this thread: warm up for `warmupMs`, then run growing batches until
 * `budgetMs` of measured time has passed.
 */
export function measure(fn: () => unknown, budgetMs = 700, warmupMs = 150): Timing {
  const warmEnd = performance.now() + warmupMs;
  while (performance.now() < warmEnd) sink = fn();
  let iterations = 0;
  let elapsed = 0;
  let batch = 1;
  while (elapsed < budgetMs) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) sink = fn();
    elapsed += performance.now() - start;
    iterations += batch;
    if (batch < 1 << 20) batch *= 2;
  }
  const nsPerOp = (elapsed * 1e6) / iterations;
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp, iterations };
}

export interface Comparison {
  /** Median ns per call of the measured function. */
  nsPerOp: number;
  /** Median ns per call of the baseline. */
  baselineNs: number;
  /** Median over rounds of (fn time / baseline time), each round timing both back to back. */
  ratio: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Time `fn` against `baseline` in alternating short rounds and take medians, so a change
 * in machine load (other processes on a shared host) affects both sides of each ratio alike.
 */
export function compare(baseline: () => unknown, fn: () => unknown, rounds = 9, roundMs = 80): Comparison {
  measure(baseline, 0, 100);
  measure(fn, 0, 100);
  const base: number[] = [];
  const mine: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = measure(baseline, roundMs, 0).nsPerOp;
    const m = measure(fn, roundMs, 0).nsPerOp;
    base.push(b);
    mine.push(m);
    ratios.push(m / b);
  }
  return { nsPerOp: median(mine), baselineNs: median(base), ratio: median(ratios) };
}
