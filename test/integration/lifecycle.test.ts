/** The obligation lifecycle (test/integration/lifecycle.ts) on dynalite. */
import { describeLifecycle } from './lifecycle.ts';

describeLifecycle('(dynalite)', () => ({}));
