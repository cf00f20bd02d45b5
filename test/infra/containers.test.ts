import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHAIN_NODE_UID } from '../../lib/constructs/chain-node.ts';

const read = (path: string): string => readFileSync(fileURLToPath(new URL(`../../containers/${path}`, import.meta.url)), 'utf8');

/** The instructions of the last stage (the image that runs). */
function finalStage(dockerfile: string): string {
  const stages = dockerfile.split(/^FROM /m);
  return stages[stages.length - 1] ?? '';
}

const images = [
  {
    name: 'multichain',
    download: /https:\/\/www\.multichain\.com\/download\/multichain-\$\{MULTICHAIN_VERSION\}\.tar\.gz/,
    verify: /echo "\$\{MULTICHAIN_SHA256\}  [^"]+" \| sha256sum -c -/,
    required: /if \[ -z "\$\{MULTICHAIN_SHA256\}" \]; then[\s\S]*?exit 1/,
    entrypoint: [/multichain-util create/, /set_param anyone-can-connect false/, /create stream "\$stream" false/, /cli subscribe "\[\$list\]"/, /JOIN_CHAIN/, /echo "\$address" > "\$DATA_DIR\/address"/],
  },
  {
    name: 'bitcoind',
    download: /https:\/\/bitcoincore\.org\/bin\/bitcoin-core-\$\{BITCOIN_VERSION\}/,
    verify: /echo "\$\{BITCOIN_SHA256\}  \$\{archive\}" \| sha256sum -c -/,
    required: /if \[ -z "\$\{BITCOIN_SHA256\}" \]; then[\s\S]*?exit 1/,
    entrypoint: [/chain=\$chain/, /txindex=1/, /fallbackfee=/, /createwallet wallet_name="\$wallet" descriptors=true/, /generatetoaddress 101/, /getmempoolinfo/, /generatetoaddress 1 "\$miner"/],
  },
] as const;

describe('container images', () => {
  for (const image of images) {
    describe(image.name, () => {
      const dockerfile = read(`${image.name}/Dockerfile`);
      const entrypoint = read(`${image.name}/entrypoint.sh`);

      it('starts from Debian slim', () => {
        const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
        assert.ok(bases.length > 0);
        for (const base of bases) assert.match(base ?? '', /^debian:[a-z]+-slim$/);
      });

      it('downloads the official release and verifies its checksum', () => {
        assert.match(dockerfile, image.download);
        assert.match(dockerfile, image.verify);
        assert.match(dockerfile, image.required);
        // Verification must come before unpacking.
        assert.ok(dockerfile.search(image.verify) < dockerfile.search(/tar -xzf/));
      });

      it('never pipes a download into a shell', () => {
        assert.doesNotMatch(dockerfile, /(curl|wget)[^\n|]*\|\s*(ba)?sh/);
        assert.doesNotMatch(entrypoint, /(curl|wget)[^\n|]*\|\s*(ba)?sh/);
      });

      it('runs as a non-root user whose uid matches the EFS access point', () => {
        const stage = finalStage(dockerfile);
        const users = [...stage.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
        assert.equal(users.length, 1);
        assert.notEqual(users[0], 'root');
        assert.notEqual(users[0], '0');
        assert.match(stage, new RegExp(`ARG NODE_UID=${CHAIN_NODE_UID}\\b`));
        assert.match(stage, /useradd --system --uid "\$\{NODE_UID\}"/);
        assert.match(stage, /ENTRYPOINT \["\/usr\/local\/bin\/entrypoint\.sh"\]/);
      });

      it('keeps credentials out of the image', () => {
        assert.doesNotMatch(dockerfile, /RPC_PASSWORD|rpcpassword/i);
        assert.match(entrypoint, /: "\$\{RPC_PASSWORD:\?/);
      });

      it('entrypoint sets the chain up on first start', () => {
        assert.match(entrypoint, /^#!\/bin\/sh\nset -eu|^#!\/bin\/sh[\s\S]*?\nset -eu\n/);
        for (const step of image.entrypoint) assert.match(entrypoint, step);
        assert.ok((statSync(fileURLToPath(new URL(`../../containers/${image.name}/entrypoint.sh`, import.meta.url))).mode & 0o111) !== 0);
      });

      it('entrypoint parses as POSIX sh and stops the node cleanly on SIGTERM', () => {
        const path = fileURLToPath(new URL(`../../containers/${image.name}/entrypoint.sh`, import.meta.url));
        const check = spawnSync('sh', ['-n', path], { encoding: 'utf8' });
        assert.equal(check.status, 0, check.stderr);
        // one trap: stop the daemon, wait for it, and exit with its status (set -e + an interrupted
        // wait gave 143 after a clean stop); test/real-nodes/entrypoints.test.ts runs it on the real binaries
        const traps = entrypoint.split('\n').filter((l) => l.startsWith('trap ') && !l.startsWith('trap - '));
        assert.equal(traps.length, 1, traps.join('\n'));
        const trap = traps[0] ?? '';
        const handler = /^trap (\w+) TERM INT$/.exec(trap)?.[1];
        const body = handler ? (new RegExp(`^${handler}\\(\\) \\{[\\s\\S]*?\\n\\}`, 'm').exec(entrypoint)?.[0] ?? '') : trap;
        assert.match(body, /wait "\$pid" \|\| (\w+)=\$\?[;\n][\s\S]*exit "\$\1"/, trap);
      });
    });
  }
});

describe('bitcoind image specifics', () => {
  const dockerfile = read('bitcoind/Dockerfile');
  const entrypoint = read('bitcoind/entrypoint.sh');

  it('pins the Bitcoin Core 28.1 x86_64 archive digest by default, checked as well as SHA256SUMS', () => {
    assert.match(dockerfile, /^ARG BITCOIN_VERSION=28\.1$/m);
    // bitcoin-28.1-x86_64-linux-gnu.tar.gz, as every guix.sigs builder attested it
    assert.match(dockerfile, /^ARG BITCOIN_SHA256=07f77afd326639145b9ba9562912b2ad2ccec47b8a305bd075b4f4cb127b7ed7$/m);
    assert.match(dockerfile, /sha256sum --ignore-missing -c SHA256SUMS/);
    assert.ok(dockerfile.search(/echo "\$\{BITCOIN_SHA256\}/) < dockerfile.search(/tar -xzf/));
  });

  it('writes rpcauth (salted HMAC), never rpcpassword, and has openssl to compute it', () => {
    assert.match(entrypoint, /^rpcauth=\$RPC_USER:\$salt\\\$\$hmac$/m);
    assert.match(entrypoint, /openssl dgst -sha256 -hmac "\$salt"/);
    assert.match(entrypoint, /od -An -N16 -tx1 \/dev\/urandom/);
    assert.doesNotMatch(entrypoint, /^\s*rpc(password|user)=/m);
    assert.match(finalStage(dockerfile), /apt-get install -y --no-install-recommends openssl/);
  });

  it('selects regtest, signet, testnet4 or mainnet and refuses anything else', () => {
    for (const [network, chain] of [['regtest', 'regtest'], ['signet', 'signet'], ['testnet4', 'testnet4'], ['mainnet', 'main']]) {
      assert.match(entrypoint, new RegExp(`^\\s*${network}\\)\\s+chain=${chain};`, 'm'));
    }
    assert.match(entrypoint, /\*\) echo "NETWORK must be regtest, signet, testnet4 or mainnet/);
  });

  it('mines (101 blocks, then the miner) only on regtest; prunes only off regtest, without txindex', () => {
    const start = entrypoint.indexOf('if [ "$NETWORK" = regtest ]; then\n  if [ ! -f');
    assert.ok(start > 0, 'a regtest-only block');
    // every generatetoaddress (first-start blocks and the miner) is inside it
    assert.ok(entrypoint.indexOf('generatetoaddress') > start);
    assert.match(entrypoint.slice(start), /generatetoaddress 101[\s\S]*generatetoaddress 1 "\$miner"[\s\S]*\nfi\n\nwait "\$pid"/);
    assert.match(entrypoint, /PRUNE is not allowed on regtest/);
    assert.match(entrypoint, /prune=\$PRUNE\ntxindex=0/);
  });

  it('the health check and the documented commands give bitcoin-cli the data dir', () => {
    const readme = read('bitcoind/README.md');
    const deploy = readFileSync(fileURLToPath(new URL('../../docs/deploy.md', import.meta.url)), 'utf8');
    for (const doc of [readme, deploy]) {
      // every quoted command (`…` or "…") that runs bitcoin-cli
      const commands = [...doc.matchAll(/[`"](bitcoin-cli [^`"]*)/g)].map((m) => m[1] ?? '');
      assert.ok(commands.length > 0);
      for (const command of commands) assert.match(command, /^bitcoin-cli -datadir=\/data\b/, command);
    }
  });
});
