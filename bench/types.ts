/** One line of the benchmark table. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** Cost relative to the row's baseline (lower is better), when it has one. */
  ratio?: number;
  /** What the ratio or value should be, in words (e.g. "≤ 1.5x per signature checked"). */
  target?: string;
  /** Whether the target was met. */
  ok?: boolean;
}

/** A named group of measurements; `filter` (case-insensitive substring) selects rows to run. */
export interface BenchSuite {
  name: string;
  run(filter?: string): Promise<BenchRow[]>;
}
