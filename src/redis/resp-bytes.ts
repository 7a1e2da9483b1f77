// The bytes RESP2 and RESP3 frames are made of, by name: the codec's scanners, decoder and encoder share them.
export const CR = 0x0d;
export const LF = 0x0a;

export const PLUS = 0x2b;
export const MINUS = 0x2d;
export const COLON = 0x3a;
export const DOLLAR = 0x24;
export const STAR = 0x2a;
export const UNDERSCORE = 0x5f;
export const HASH = 0x23;
export const COMMA = 0x2c;
export const PAREN = 0x28;
export const BANG = 0x21;
export const EQUALS = 0x3d;
export const PERCENT = 0x25;
export const TILDE = 0x7e;
export const PIPE = 0x7c;
export const GREATER = 0x3e;
export const DOT = 0x2e;
export const SEMICOLON = 0x3b;
export const QUESTION = 0x3f;
export const ZERO = 0x30;
/** RESP3 booleans: `#t` and `#f`. */
export const LOWER_T = 0x74;
export const LOWER_F = 0x66;
