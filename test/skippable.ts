/**
 * For suites that need an outside tool (mosquitto, java, chromium) and skip,
 * saying why, without it.
 *
 * `describe(name, { skip: reason }, …)` would leave them out of the runner's
 * summary: a skipped suite adds nothing to `# tests` nor to `# skipped` (Node 20
 * and 22 alike), so a run without the tool looks like a run that never had those
 * tests. Such a suite keeps a plain `describe` and takes `it` and its hooks from
 * here instead: given a reason, every test is registered with `{ skip: reason }`
 * (reported, with the reason, and counted under `# skipped`) and the hooks do
 * nothing, so no setup runs; given `false`, they are node:test's own.
 */
import * as nodeTest from 'node:test';
import type { TestContext, TestOptions } from 'node:test';

type TestFn = (t: TestContext) => void | Promise<void>;
type Hook = typeof nodeTest.before;

export interface Skippable {
  it(name: string, fn: TestFn): Promise<void>;
  it(name: string, options: TestOptions, fn: TestFn): Promise<void>;
  before: Hook;
  after: Hook;
  beforeEach: Hook;
  afterEach: Hook;
}

export function skippable(reason: string | false): Skippable {
  if (reason === false) {
    return { it: nodeTest.it, before: nodeTest.before, after: nodeTest.after, beforeEach: nodeTest.beforeEach, afterEach: nodeTest.afterEach };
  }
  const none: Hook = () => {};
  return {
    it: (name: string, options: TestOptions | TestFn, fn?: TestFn) =>
      typeof options === 'function' ? nodeTest.it(name, { skip: reason }, options) : nodeTest.it(name, { ...options, skip: reason }, fn),
    before: none,
    after: none,
    beforeEach: none,
    afterEach: none,
  };
}
