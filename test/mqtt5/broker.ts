/**
 * Test support for the MQTT5 + mTLS device link: Debian's mosquitto as the
 * nearest local stand-in for AWS IoT Core.
 *
 * - `makePki` uses the `openssl` CLI to make a throwaway CA, a server certificate
 *   for 127.0.0.1/localhost, and one client certificate per identity whose CN is
 *   the thing name (IoT Core ties the certificate to the thing; here the CN is it).
 * - `startMosquitto` writes a mosquitto.conf with one TLS listener on a free
 *   loopback port (`require_certificate true`, `use_identity_as_username true`,
 *   `allow_anonymous false`) and an ACL file that mimics the IoT device policy
 *   (lib/constructs/device-policy.ts): each thing may publish only under
 *   `oc/{domain}/{thing}/out/#` and subscribe/receive only under `oc/{domain}/{thing}/in/#`.
 *   A privileged identity (the back-end, in AWS a topic rule / the data plane) gets `oc/#`.
 *
 * mosquitto.conf(5), 2.0.11: with require_certificate and use_identity_as_username
 * "the Common Name (CN) from the client certificate [is] used instead of the MQTT
 * username for access control purposes. The password is not used", so
 * `allow_anonymous false` is compatible: a client with a valid certificate has a
 * username, one without a certificate fails the TLS handshake.
 * The ACL uses `user` blocks rather than `pattern ... %u` lines because the IoT
 * policy binds the domain as well (`${iot:Connection.Thing.Attributes[domain]}`),
 * and a `%u` substitution "must be the only text for that level", so it cannot
 * carry a thing's domain.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from '../cli/support.ts';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where a tool is, or undefined when it is not installed (mosquitto lives in /usr/sbin). */
export async function findTool(name: 'mosquitto' | 'openssl'): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/sbin'])) {
    if (dir === '') continue;
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** A thing (or back-end) identity: its certificate's CN and the topics it may use. */
export interface Identity {
  /** Certificate CN = MQTT client id = the thing name. */
  name: string;
  /** The thing's domain (the policy's `Attributes[domain]`); absent for a privileged identity. */
  domain?: string;
  /** When true, read and write on `oc/#` (the back-end). */
  privileged?: boolean;
}

export interface ClientCert {
  certPath: string;
  keyPath: string;
}

export interface Pki {
  dir: string;
  caPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  /** One certificate per identity, signed by the CA, CN = identity name. */
  clients: Map<string, ClientCert>;
  /** A certificate for `rogueName`, signed by a second CA the broker does not trust. */
  rogue: ClientCert;
  /** Removes every file. */
  dispose(): Promise<void>;
}

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function openssl(bin: string, cwd: string, args: string[]): Promise<void> {
  await run(bin, args, { cwd });
}

async function selfSignedCa(bin: string, dir: string, stem: string, cn: string): Promise<void> {
  await openssl(bin, dir, ['req', '-x509', ...EC_P256, '-keyout', `${stem}.key`, '-out', `${stem}.crt`, '-subj', `/CN=${cn}`, '-days', '2']);
}

async function issue(bin: string, dir: string, ca: string, stem: string, cn: string, ext: string): Promise<ClientCert> {
  await openssl(bin, dir, ['req', '-new', ...EC_P256, '-keyout', `${stem}.key`, '-out', `${stem}.csr`, '-subj', `/CN=${cn}`]);
  await writeFile(join(dir, `${stem}.ext`), ext);
  await openssl(bin, dir, [
    'x509', '-req', '-in', `${stem}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${stem}.crt`, '-days', '2', '-sha256', '-extfile', `${stem}.ext`,
  ]);
  return { certPath: join(dir, `${stem}.crt`), keyPath: join(dir, `${stem}.key`) };
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost, and a client certificate per identity (EC P-256). */
export async function makePki(opensslBin: string, identities: readonly Identity[], rogueName: string): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'oc-mqtt5-'));
  try {
    await selfSignedCa(opensslBin, dir, 'ca', 'oc-test-ca');
    await selfSignedCa(opensslBin, dir, 'other-ca', 'oc-untrusted-ca');
    const server = await issue(
      opensslBin, dir, 'ca', 'server', 'localhost',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
    );
    const clientExt = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n';
    const clients = new Map<string, ClientCert>();
    for (const [i, id] of identities.entries()) clients.set(id.name, await issue(opensslBin, dir, 'ca', `client-${i}`, id.name, clientExt));
    const rogue = await issue(opensslBin, dir, 'other-ca', 'rogue', rogueName, clientExt);
    return {
      dir,
      caPath: join(dir, 'ca.crt'),
      serverCertPath: server.certPath,
      serverKeyPath: server.keyPath,
      clients,
      rogue,
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The ACL file text: per-identity `user` blocks mirroring the IoT device policy. */
export function aclFor(identities: readonly Identity[]): string {
  const lines: string[] = ['# Generated for the MQTT5 link tests: mirrors lib/constructs/device-policy.ts'];
  for (const id of identities) {
    lines.push(`user ${id.name}`);
    if (id.privileged === true) lines.push('topic readwrite oc/#');
    else if (id.domain !== undefined) {
      lines.push(`topic write oc/${id.domain}/${id.name}/out/#`);
      lines.push(`topic read oc/${id.domain}/${id.name}/in/#`);
    }
  }
  return lines.join('\n') + '\n';
}

export interface Mosquitto {
  port: number;
  /** The broker's log so far (stderr), for failure messages. */
  log(): string;
  /** SIGTERM, then waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

/**
 * Starts `mosquitto -c <conf>` on a loopback port (a free one unless given) with mTLS and the ACL for `identities`,
 * and resolves once the port accepts TCP connections (rejects, with the broker's log, if it exits first
 * or is not up within `readyMs`).
 */
export async function startMosquitto(
  bin: string,
  pki: Pki,
  identities: readonly Identity[],
  opts: { port?: number; readyMs?: number } = {},
): Promise<Mosquitto> {
  // A free port is free only until someone binds it: mosquitto binds it later, so when it finds it
  // taken meanwhile ("Address already in use"), start again on another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(bin, pki, identities, opts.port ?? (await freePort()), opts.readyMs ?? 5000);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/Address already in use/i.test(String(err))) throw err;
    }
  }
}

async function startOn(bin: string, pki: Pki, identities: readonly Identity[], port: number, readyMs: number): Promise<Mosquitto> {
  const aclPath = join(pki.dir, 'acl');
  const confPath = join(pki.dir, 'mosquitto.conf');
  await writeFile(aclPath, aclFor(identities));
  await writeFile(
    confPath,
    [
      // Run as the current user: as root, mosquitto would otherwise switch to `mosquitto` and could not read the 0700 temp dir.
      `user ${userInfo().username}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'per_listener_settings false',
      'allow_anonymous false',
      `acl_file ${aclPath}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${pki.caPath}`,
      `certfile ${pki.serverCertPath}`,
      `keyfile ${pki.serverKeyPath}`,
      'require_certificate true',
      'use_identity_as_username true',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
  });
  const broker: Mosquitto = {
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited(child);
    },
  };
  const deadline = Date.now() + readyMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mosquitto exited early:\n${log}`);
    if (await acceptsConnections(port)) return broker;
    if (Date.now() > deadline) {
      await broker.stop();
      throw new Error(`mosquitto not listening on ${port} after ${readyMs} ms:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
