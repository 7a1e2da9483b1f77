/**
 * The layout of a release file, as src/native/launcher.c reads it: the launcher, then each part of the
 * payload at a 64 KiB boundary (so that a segment of an ELF part can be mapped from the file on any page
 * size Linux uses), then a table of the parts and a trailer that locates it.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

/** Kinds of payload entries, as launcher.c numbers them. */
export const PART = { node: 1, addon: 2, loader: 3, library: 4 } as const;
export type PartKind = keyof typeof PART;

export interface Part {
  readonly kind: PartKind;
  readonly file: string;
  /** The name of its memory file (the addon, a library), at most 47 bytes. */
  readonly name?: string;
}

const ALIGN = 64 * 1024;
const ENTRY_SIZE = 72;
const NAME_SIZE = 48;
const MAGIC = 'DRAININITPACK001';
/** launcher.c's MAX_ENTRIES. */
const MAX_PARTS = 16;

/** Writes launcher + parts + table + trailer to output. */
export function packRelease(launcher: string, parts: readonly Part[], output: string): void {
  if (parts.length > MAX_PARTS) throw new Error(`at most ${MAX_PARTS} parts`);
  const fd = openSync(output, 'w', 0o755);
  try {
    let offset = 0;
    const write = (bytes: Uint8Array): void => {
      writeSync(fd, bytes, 0, bytes.length, offset);
      offset += bytes.length;
    };
    const pad = (): void => write(new Uint8Array((ALIGN - (offset % ALIGN)) % ALIGN));
    write(readFileSync(launcher));
    const table = Buffer.alloc(parts.length * ENTRY_SIZE);
    parts.forEach((part, i) => {
      pad();
      const bytes = readFileSync(part.file);
      const name = Buffer.from(part.name ?? basename(part.file));
      if (name.length >= NAME_SIZE) throw new Error(`part name too long: ${name.toString()}`);
      const at = i * ENTRY_SIZE;
      table.writeUInt32LE(PART[part.kind], at);
      table.writeBigUInt64LE(BigInt(offset), at + 8);
      table.writeBigUInt64LE(BigInt(bytes.length), at + 16);
      name.copy(table, at + 24);
      write(bytes);
    });
    const tableOffset = offset;
    write(table);
    const trailer = Buffer.alloc(32);
    trailer.writeBigUInt64LE(BigInt(tableOffset), 0);
    trailer.writeBigUInt64LE(BigInt(parts.length), 8);
    trailer.write(MAGIC, 16, 'latin1');
    write(trailer);
  } finally {
    closeSync(fd);
  }
}

export interface PackedPart {
  readonly kind: number;
  /** Where it starts in the release file, and its size, in bytes. */
  readonly offset: number;
  readonly size: number;
}

/** The parts a release file's table lists, as the launcher finds them; throws when the file has no payload. */
export function readParts(release: string): PackedPart[] {
  const fd = openSync(release, 'r');
  try {
    const read = (offset: number, size: number): Buffer => {
      const bytes = Buffer.alloc(size);
      if (readSync(fd, bytes, 0, size, offset) !== size) throw new Error(`${release}: cut short`);
      return bytes;
    };
    const trailer = read(fstatSync(fd).size - 32, 32);
    if (trailer.toString('latin1', 16) !== MAGIC) throw new Error(`${release}: no payload`);
    const count = Number(trailer.readBigUInt64LE(8));
    const table = read(Number(trailer.readBigUInt64LE(0)), count * ENTRY_SIZE);
    return Array.from({ length: count }, (_, i) => ({
      kind: table.readUInt32LE(i * ENTRY_SIZE),
      offset: Number(table.readBigUInt64LE(i * ENTRY_SIZE + 8)),
      size: Number(table.readBigUInt64LE(i * ENTRY_SIZE + 16)),
    }));
  } finally {
    closeSync(fd);
  }
}
