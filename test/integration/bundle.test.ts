/**
 * The Lambda bundles, not just the sources: functions are bundled by esbuild
 * with the options CDK's NodejsFunction uses (lib/constructs/handlers.ts: ESM,
 * `module` first, a createRequire banner, dtrace-provider external), loaded,
 * and invoked through an HTTP front against the embedded cloud's endpoints.
 *
 * A bundle carries its own copy of functions/shared/deps.ts, so the cloud's
 * per-hub Deps scope (runWithDeps) does not reach it: like a real Lambda, it
 * builds its Deps from process.env. This test therefore exports the hub's
 * environment (cloud.env) to process.env for its duration, and restores it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { startHttpFront, type HttpFront, type Route } from '../../local/http.ts';

const source = (name: string) => fileURLToPath(new URL(`../../functions/${name}.ts`, import.meta.url));

describe('bundled handlers', () => {
  let dir: string;
  let cloud: LocalCloud;
  let front: HttpFront;
  const saved = { ...process.env };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-bundle-'));
    await build({
      entryPoints: { domains: source('domains'), query: source('query') },
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      minify: true,
      mainFields: ['module', 'main'],
      banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
      external: ['dtrace-provider'],
      logLevel: 'silent',
    });
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    Object.assign(process.env, cloud.env);
    const load = async (name: string) =>
      ((await import(pathToFileURL(join(dir, `${name}.mjs`)).href)) as { handler: Route['handler'] }).handler;
    const [domains, query] = [await load('domains'), await load('query')];
    front = await startHttpFront({
      routes: [
        { method: 'POST', path: '/domains', handler: domains },
        { method: 'GET', path: '/domains/{domain}/reputation', handler: query },
        { method: 'GET', path: '/health', handler: query },
      ],
    });
  });
  after(async () => {
    await front?.stop();
    await cloud?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('registers a domain through the bundle, visible to the source handlers in the same table', async () => {
    const res = await fetch(`${front.url}/domains`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ domain: 'cb', role: 'consumer' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = (await res.json()) as { domain: string; fundingAddress?: string };
    assert.equal(body.domain, 'cb');
    assert.equal(typeof body.fundingAddress, 'string');
    const listed = await cloud.call<{ domains: { domain: string }[] }>('GET', '/domains');
    assert.ok(listed.body.domains.some((d) => d.domain === 'cb'));
  });

  it('answers queries and typed errors from the bundle', async () => {
    const rep = await fetch(`${front.url}/domains/cb/reputation`);
    assert.equal(rep.status, 200);
    assert.equal(((await rep.json()) as { reputation: number }).reputation, 0.5);
    const bad = await fetch(`${front.url}/domains`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"domain":"x y"}' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'F00_MALFORMED');
  });
});
