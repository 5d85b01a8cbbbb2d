import { describe, expect, it } from 'vitest';
import { COMMANDS, parseCli } from '../../lib/cli/args.ts';
import { jsonErrorOffset, lineAndColumn } from '../../lib/cli/config-file.ts';
import { COMMAND_HELP, commandHelp } from '../../lib/cli/help.ts';
import { matrixLegend } from '../../lib/cli/print.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { humanTime } from '../../lib/core/units.ts';

describe('issue 13: help that helps', () => {
  it('every command has its help: usage, options and one example', () => {
    for (const command of COMMANDS) {
      expect(COMMAND_HELP[command], command).toBeDefined();
      const text = commandHelp(command) as string;
      expect(text).toMatch(new RegExp(`^Usage: backup-validator ${command} `));
      expect(text).toMatch(/\nOptions:\n {2}-/);
      expect(text).toMatch(new RegExp(`\\nExample:\\n {2}backup-validator ${command} `));
    }
  });

  it('help <command>, <command> --help and <command> -h ask for that command; --help and help alone for all', () => {
    expect(parseCli(['help', 'restore'])).toEqual({ help: 'restore' });
    expect(parseCli(['restore', '--help'])).toEqual({ help: 'restore' });
    expect(parseCli(['history', '-h'])).toEqual({ help: 'history' });
    expect(parseCli(['--help'])).toEqual({ help: undefined });
    expect(parseCli(['help'])).toEqual({ help: undefined });
    expect(() => parseCli(['help', 'frobnicate'])).toThrow(/unknown command "frobnicate"/);
  });

  it('an unknown option names the valid options of the command, and the nearest one', () => {
    const error = (() => {
      try {
        parseCli(['history', '--serie', 'x']);
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect(error?.message).toBe(
      'unknown option --serie for history (did you mean --series?); the options of history are: ' +
        '--runs, --series, --config, --json, --html, --ledger, --run-store, --quiet, --verbose, --help',
    );
    expect(error?.message).not.toContain('positional');
    expect(() => parseCli(['integrity', '--sorce', 'x'])).toThrow(
      /^unknown option --sorce for integrity \(did you mean --source\?\); the options of integrity are: --source, --config/,
    );
    expect(() => parseCli(['--bogus'])).toThrow(/^unknown option --bogus; the options are: --source, /);
  });

  it('a JSON syntax error is located by line and column, also where V8 gives no position', () => {
    const at = (text: string) => lineAndColumn(text, jsonErrorOffset(text));
    expect(at('{\n  "defaults": {\n    "rpoMinutes": 60,\n  }\n}\n')).toEqual({ line: 4, column: 3 });
    expect(at('{"a": tru}')).toEqual({ line: 1, column: 10 });
    expect(at("{\n  'a': 1\n}")).toEqual({ line: 2, column: 3 });
    expect(at('{"a": 1')).toEqual({ line: 1, column: 8 });
    expect(at('{"a": "\\q"}')).toEqual({ line: 1, column: 9 });
    expect(at('[1, 2] 3')).toEqual({ line: 1, column: 8 });
  });

  it('the legend under the matrix says what SCORE and COMPLIANCE mean, with the weights in use', () => {
    const legend = matrixLegend({ checksum: 0.5, access: 0.3, archive: 0.2 });
    expect(legend).toMatch(/^SCORE: .*checksum 50 %, access 30 %, archive 20 %/m);
    expect(legend).toMatch(/^COMPLIANCE: .*RPO/m);
    expect(legend).toMatch(/^Cells: ok = no finding/m);
  });

  it('times in words', () => {
    expect([6, 4200, 60_000, 725_000, 3_600_000, 12_000_000].map(humanTime)).toEqual([
      '6 ms',
      '4.2 s',
      '1 min',
      '12 min 5 s',
      '1 h',
      '3 h 20 min',
    ]);
  });
});
