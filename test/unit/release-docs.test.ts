// The release image's tag, drain-init:<version>, is written out where users copy it from: it follows the
// package's version.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';

const read = (file: string): string => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe(`drain-init:${VERSION}, as the docs name it`, () => {
  it.each(['README.md', 'Dockerfile.example'])('%s names the release image of this version only', (file) => {
    const tags = [...read(file).matchAll(/drain-init:(\d+\.\d+\.\d+[\w.-]*)/g)].map((match) => match[1]);
    expect(tags.length).toBeGreaterThan(0);
    expect(new Set(tags)).toEqual(new Set([VERSION]));
  });
});
