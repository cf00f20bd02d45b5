// Reads the TAP that `npm test` printed (stdin) and prints each failure again with its error, so the
// end of a red CI log says why: a suite's failed hook, a test's assertion. Tests cancelled only
// because their parent failed are counted, not repeated.
import { createInterface } from 'node:readline';

const lines = [];
for await (const line of createInterface({ input: process.stdin })) lines.push(line);

let cancelled = 0;
for (let i = 0; i < lines.length; i++) {
  const m = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i]);
  if (!m) continue;
  const block = [];
  for (let j = i + 1; j < lines.length && !/^\s*\.\.\.\s*$/.test(lines[j]); j++) block.push(lines[j]);
  if (block.some((l) => l.includes("failureType: 'subtestsFailed'"))) continue; // its failing tests are printed
  if (block.some((l) => l.includes("failureType: 'cancelledByParent'"))) {
    cancelled++;
    continue;
  }
  console.log(`✖ ${m[2]}`);
  const shown = block.map((l) => l.trim()).filter((l) => !/^(---|duration_ms:|type:)/.test(l));
  for (const l of shown.slice(0, 40)) console.log(`  ${l}`);
}
if (cancelled) console.log(`(${cancelled} more cancelled because their suite failed)`);
