/** The one argument parser (cli/args.ts): ranges checked, never clamped; unknown flags named with a hint; --help. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closest, describeError, helpText, parse, UsageError, type CommandSpec, type Options } from '../../cli/args.ts';

const OPTS = {
  consumers: { type: 'int', min: 1, max: 1000, default: 4, help: 'consumer domains' },
  share: { type: 'number', min: 0, max: 1, default: 0.25, help: 'a share' },
  port: { type: 'int', min: 1, max: 65535, help: 'a port' },
  data: { type: 'string', arg: 'DIR', help: 'a dir' },
  alg: { type: 'string', choices: ['ed25519', 'p256'], default: 'ed25519', help: 'key algorithm' },
  serve: { type: 'boolean', help: 'keep serving' },
} as const satisfies Options;
const SPEC: CommandSpec<typeof OPTS> = { name: 'cmd', usage: '[-- options]', summary: 'a command', options: OPTS };

const usage = (argv: string[], spec: CommandSpec<Options> = SPEC as never): string => {
  try {
    parse(spec, argv, () => undefined);
  } catch (e) {
    assert.ok(e instanceof UsageError, `a UsageError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e.message;
  }
  assert.fail(`accepted ${argv.join(' ')}`);
};

describe('cli/args: values', () => {
  it('parses integers, numbers, strings, choices and booleans, with defaults', () => {
    const { values } = parse(SPEC, ['--consumers', '6', '--share=0.5', '--data', '/tmp/x', '--alg', 'p256', '--serve']);
    assert.deepEqual(values, { consumers: 6, share: 0.5, port: undefined, data: '/tmp/x', alg: 'p256', serve: true });
    assert.deepEqual(parse(SPEC, []).values, { consumers: 4, share: 0.25, port: undefined, data: undefined, alg: 'ed25519', serve: false });
  });

  it('refuses fractions, negatives, out-of-range and non-numbers, naming the flag and the range', () => {
    assert.match(usage(['--consumers', '1.5']), /--consumers must be an integer from 1 to 1000 \(got "1\.5"\)/);
    assert.match(usage(['--consumers', '-1']), /--consumers must be an integer from 1 to 1000 \(got "-1"\)/);
    assert.match(usage(['--port', '70000']), /--port must be an integer from 1 to 65535/);
    assert.match(usage(['--port', '0']), /--port/);
    assert.match(usage(['--share', '2']), /--share must be a number from 0 to 1 \(got "2"\)/);
    assert.match(usage(['--consumers', 'abc']), /integer/);
    assert.match(usage(['--consumers', '']), /integer/);
    assert.match(usage(['--consumers', '1e3x']), /integer/);
    assert.match(usage(['--alg', 'rsa']), /--alg must be one of ed25519, p256/);
  });

  it('names an unknown flag, with the closest known one when there is one', () => {
    assert.match(usage(['--consumrs', '3']), /unknown option --consumrs \(did you mean --consumers\?\)/);
    assert.match(usage(['--frobnicate']), /^unknown option --frobnicate; see cmd -- --help$/);
    assert.match(usage(['-x']), /unknown option -x/);
  });

  it('refuses a missing value, a value on a boolean, a repeated flag and stray arguments', () => {
    assert.match(usage(['--data']), /--data needs a value/);
    assert.match(usage(['--data', '--serve']), /--data needs a value/);
    assert.match(usage(['--serve=yes']), /--serve takes no value/);
    assert.match(usage(['--port', '1', '--port', '2']), /given twice/);
    assert.match(usage(['stray']), /unexpected argument "stray"/);
  });

  it('counts positionals and passes what follows -- through when asked', () => {
    const spec: CommandSpec<typeof OPTS> = { ...SPEC, positionals: { min: 1, max: 1 }, passThrough: true };
    assert.match(usage([], spec as never), /missing argument/);
    const p = parse(spec, ['file.json', '--serve', '--', '--seed', '3']);
    assert.deepEqual([p.positionals, p.rest, p.values.serve], [['file.json'], ['--seed', '3'], true]);
  });

  it('prints the help from the same table it parses, and stops', () => {
    let text = '';
    const p = parse(SPEC, ['--consumers', '2', '-h'], (t) => (text = t));
    assert.equal(p.help, true);
    assert.equal(text, helpText(SPEC));
    for (const flag of ['--consumers N', '--share N', '--port N', '--data DIR', '--alg VALUE', '--serve', '-h, --help']) assert.ok(text.includes(flag), flag);
    assert.match(text, /\(1\.\.1000\); default 4/);
  });
});

describe('cli/args: hints and error lines', () => {
  it('suggests only plausible typos', () => {
    assert.equal(closest('consumrs', ['consumers', 'devices']), 'consumers');
    assert.equal(closest('creditBase', ['credit-base', 'out']), 'credit-base');
    assert.equal(closest('seed', ['keep', 'runs', 'load']), undefined);
    assert.equal(closest('frobnicate', ['consumers', 'data']), undefined);
  });

  it('describes an aws-crt error by its name, and a cause chain on one line', () => {
    assert.equal(describeError({ error_name: 'AWS_ERROR_MQTT_PROTOCOL_ERROR' }), 'AWS_ERROR_MQTT_PROTOCOL_ERROR');
    assert.equal(describeError({ message: 'undefined', error_name: 'AWS_ERROR_MQTT_PROTOCOL_ERROR' }), 'AWS_ERROR_MQTT_PROTOCOL_ERROR');
    assert.equal(describeError(new Error('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') })), 'fetch failed: connect ECONNREFUSED 127.0.0.1:1');
    assert.equal(describeError(new Error('a\n  b')), 'a b');
    assert.equal(describeError(undefined), 'unknown error');
  });
});
