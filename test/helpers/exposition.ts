// A strict parser of the Prometheus text exposition format (0.0.4), for tests of /metrics. Stricter
// than Prometheus itself where drain-init's output never needs the leniency: every family has HELP
// and TYPE before its samples, a family's lines are together, no blank lines, no other comments, no
// duplicate series, no trailing comma in a label set. Any other line is an error naming its number.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface ParsedSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)$/;

/** The families by name, in order; throws on the first invalid line. */
export function parseExposition(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a line feed');
  const families = new Map<string, ParsedFamily & { helpSeen: boolean; typeSeen: boolean }>();
  const series = new Set<string>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    const fail = (why: string): never => {
      throw new Error(`${where}: ${why}`);
    };
    if (line === '') fail('blank line');
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) ([^ ]+) (.*)$/.exec(line) ?? /^# (HELP) ([^ ]+)$/.exec(line);
      if (match === null) return fail('a comment that is neither HELP nor TYPE');
      const [, keyword = '', name = '', rest = ''] = match;
      if (!METRIC_NAME.test(name)) fail(`invalid metric name ${name}`);
      if (current !== name && families.has(name)) fail(`family ${name} is not together`);
      current = name;
      const family = families.get(name) ?? {
        name,
        help: '',
        type: 'untyped',
        samples: [],
        helpSeen: false,
        typeSeen: false,
      };
      families.set(name, family);
      if (keyword === 'HELP') {
        if (family.helpSeen) fail(`second HELP for ${name}`);
        families.set(name, { ...family, help: unescape(rest, ['\\', 'n'], fail), helpSeen: true });
      } else {
        if (family.typeSeen) fail(`second TYPE for ${name}`);
        if (family.samples.length > 0) fail(`TYPE after samples of ${name}`);
        const type = TYPES.find((candidate) => candidate === rest);
        if (type === undefined) fail(`unknown type ${rest}`);
        families.set(name, { ...family, type: type ?? 'untyped', typeSeen: true });
      }
      return;
    }
    const sample = parseSampleLine(line, fail);
    const family = families.get(sample.name);
    if (family === undefined || current !== sample.name) return fail(`sample of ${sample.name} outside its family`);
    if (!family.helpSeen || !family.typeSeen) fail(`sample of ${sample.name} before its HELP and TYPE`);
    const key = `${sample.name}{${Object.entries(sample.labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`;
    if (series.has(key)) fail(`duplicate series ${key}`);
    series.add(key);
    family.samples.push({ labels: sample.labels, value: sample.value });
  });
  const parsed = new Map<string, ParsedFamily>();
  for (const [name, { helpSeen, typeSeen, ...family }] of families) {
    if (!helpSeen || !typeSeen) throw new Error(`family ${name} has no ${helpSeen ? 'TYPE' : 'HELP'}`);
    parsed.set(name, family);
  }
  return parsed;
}

function parseSampleLine(
  line: string,
  fail: (why: string) => never,
): { name: string; labels: Record<string, string>; value: number } {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) return fail('no metric name');
  const name = nameMatch[0];
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    while (!rest.startsWith('}')) {
      const labelMatch = /^([^=]*)="/.exec(rest);
      if (labelMatch === null) return fail('a label without ="');
      const labelName = labelMatch[1] ?? '';
      if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) fail(`invalid label name ${labelName}`);
      if (labelName in labels) fail(`label ${labelName} twice`);
      rest = rest.slice(labelMatch[0].length);
      const end = closingQuote(rest);
      if (end === -1) return fail(`unterminated value of label ${labelName}`);
      labels[labelName] = unescape(rest.slice(0, end), ['\\', '"', 'n'], fail);
      rest = rest.slice(end + 1);
      if (rest.startsWith(',')) {
        rest = rest.slice(1);
        if (rest.startsWith('}')) fail('a trailing comma in the label set');
      } else if (!rest.startsWith('}')) {
        fail('labels not separated by a comma');
      }
    }
    rest = rest.slice(1);
  }
  const parts = rest.split(' ');
  if (parts[0] !== '' || parts.length < 2 || parts.length > 3)
    return fail('expected one space, a value and an optional timestamp');
  const valueText = parts[1] ?? '';
  if (!FLOAT.test(valueText)) fail(`invalid value ${valueText}`);
  if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) fail(`invalid timestamp ${parts[2]}`);
  return { name, labels, value: Number(valueText.replace('Inf', 'Infinity')) };
}

/** Index of the first unescaped double quote. */
function closingQuote(text: string): number {
  for (let index = 0; index < text.length; index++) {
    if (text[index] === '\\') index++;
    else if (text[index] === '"') return index;
  }
  return -1;
}

function unescape(text: string, allowed: readonly string[], fail: (why: string) => never): string {
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index] ?? '';
    if (char !== '\\') {
      out += char;
      continue;
    }
    const next = text[++index] ?? '';
    if (!allowed.includes(next)) fail(`invalid escape \\${next}`);
    out += next === 'n' ? '\n' : next;
  }
  return out;
}
