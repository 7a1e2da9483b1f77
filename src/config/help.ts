import { VERSION } from '../version.js';
import { OPTIONS, defaultText, envName, type OptionSpec } from './options.js';

function flagsOf(spec: OptionSpec): string {
  const long = `--${spec.name}${spec.valueName === undefined ? '' : ` ${spec.valueName}`}`;
  return spec.short === undefined ? long : `-${spec.short}, ${long}`;
}

function envOf(spec: OptionSpec): string {
  return [envName(spec), ...(spec.presenceEnv ?? []).map((name) => `${name} (set = on)`)].join(', ');
}

/** The --help text, made from the option table. */
export function helpText(): string {
  const lines = [
    `drain-init ${VERSION}: a signal-aware, Sidekiq-aware container init (PID 1)`,
    '',
    'Usage: drain-init [options] -- <command> [args...]',
    '',
    'Options (each can also be set by its environment variable; a flag wins):',
  ];
  for (const spec of OPTIONS) {
    lines.push(`  ${flagsOf(spec)}`, `      ${spec.help}`, `      env: ${envOf(spec)}; default: ${defaultText(spec)}`);
  }
  lines.push(
    '  -h, --help',
    '      Show this help.',
    '  -V, --version',
    '      Show the version.',
    '',
    'Durations: 500ms, 30s, 2m, 1h or bare seconds. Signals: TERM, SIGTERM or 15.',
    "Exit status: the command's own, 128+N when it was killed by signal N, 126 when it cannot be",
    'executed, 127 when it is not found, 2 for a bad option or environment variable.',
  );
  return `${lines.join('\n')}\n`;
}
