/**
 * The codes themselves: generated from the CSPRNG with uniform digits (leading zeros kept), and what a person
 * types is folded to exactly those digits or refused — never read as a number ("0x1E240", "1.2e5", "+123456").
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateCode, normalizeCodeInput } from '../../src/service/codes.ts';

const ZEROS = [0x30, 0xff10, 0x660, 0x6f0, 0x966, 0x9e6, 0xe50];

describe('codes', () => {
  it('are N uniformly random digits, leading zeros kept', () => {
    for (let len = 4; len <= 10; len++) assert.match(generateCode(len), new RegExp(`^[0-9]{${len}}$`));
    const n = 20_000;
    const counts = Array.from({ length: 6 }, () => new Array<number>(10).fill(0));
    for (let i = 0; i < n; i++) [...generateCode(6)].forEach((d, pos) => counts[pos]![Number(d)]!++);
    for (const [pos, c] of counts.entries()) {
      // Chi-square, 9 degrees of freedom: 60 is far beyond p = 1e-6 (≈ 45), so a fair generator never fails;
      // a biased one (modulo bias, a stuck digit, no leading zeros) lands in the hundreds or thousands.
      const expected = n / 10;
      const chi = c.reduce((acc, x) => acc + (x - expected) ** 2 / expected, 0);
      assert.ok(chi < 60, `position ${pos}: chi-square ${chi.toFixed(1)} for ${c.join(',')}`);
    }
  });

  it('typed input folds to the same digits, whatever the script and spacing', () => {
    const typed = fc.record({ code: fc.stringMatching(/^[0-9]{6}$/), zero: fc.constantFrom(...ZEROS), gaps: fc.array(fc.constantFrom('', ' ', '-', '\u00a0', '\t'), { minLength: 7, maxLength: 7 }) });
    fc.assert(
      fc.property(typed, ({ code, zero, gaps }) => {
        const text = gaps[0] + [...code].map((d, i) => String.fromCodePoint(zero + Number(d)) + gaps[i + 1]).join('');
        assert.equal(normalizeCodeInput(text, 6), code, JSON.stringify(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('anything else is refused, never read as a number', () => {
    for (const s of ['0x1E240', '1.23456e5', '+123456', '123456abc', '12345', '1234567', '123456\u0000', '１２３４５', '', ' ', '12 34 5', '-12345', '١٢٣٤٥٦٧']) {
      assert.equal(normalizeCodeInput(s, 6), null, JSON.stringify(s));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        const out = normalizeCodeInput(s, 6);
        return out === null || /^[0-9]{6}$/.test(out);
      }),
      { numRuns: 3000 },
    );
  });
});
