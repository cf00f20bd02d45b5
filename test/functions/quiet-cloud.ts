/**
 * Run by test/functions/observability.test.ts in a child process: the embedded
 * cloud as `npm start` runs it (local/cloud.ts first), one obligation through
 * the handlers and a publish run. Whatever Powertools writes goes to stdout.
 */
import { startCloud } from '../../local/cloud.ts';
import { buy, enrol, registerDomain } from '../integration/support.ts';

const cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
try {
  await registerDomain(cloud, 'c1', 'consumer');
  await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
  const scd = await enrol(cloud, 'c1', 'c1-scd-1');
  const { res } = await buy(cloud, scd, 'p1', 'p1-spd-1');
  if (res.status !== 201) throw new Error(`not accepted: ${res.status}`);
  await cloud.runJob('publish');
} finally {
  await cloud.stop();
}
