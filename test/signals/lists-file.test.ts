import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseListText } from '../../src/signals/lists-file.ts';

test('parses every entry kind, comments and blank lines', () => {
  const text = [
    '\ufeff# header comment',
    '',
    '203.0.113.7',
    '  198.51.100.0/24   # inline comment',
    '10.1.2.3/8',
    '2001:DB8::1',
    '2001:db8:1::/48',
    '::ffff:192.0.2.9',
    '+44 7400 123456',
    '+6281234567890 # a number',
    '+4470',
    '+44 70*',
    '+1 650*',
    'AS16509',
    'as14061 # lower case',
    'AS 24940',
    '   ',
    '\t# indented comment',
  ].join('\r\n');
  const { entries, errors } = parseListText(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(entries, [
    { kind: 'ip', value: '203.0.113.7', version: 4, line: 3 },
    { kind: 'cidr', value: '198.51.100.0/24', version: 4, line: 4 },
    { kind: 'cidr', value: '10.0.0.0/8', version: 4, line: 5 },
    { kind: 'ip', value: '2001:db8::1', version: 6, line: 6 },
    { kind: 'cidr', value: '2001:db8:1::/48', version: 6, line: 7 },
    { kind: 'ip', value: '192.0.2.9', version: 4, line: 8 },
    { kind: 'number', value: '+447400123456', line: 9 },
    { kind: 'number', value: '+6281234567890', line: 10 },
    { kind: 'prefix', value: '+4470', line: 11 },
    { kind: 'prefix', value: '+4470', line: 12 },
    { kind: 'prefix', value: '+1650', line: 13 },
    { kind: 'asn', value: 16509, line: 14 },
    { kind: 'asn', value: 14061, line: 15 },
    { kind: 'asn', value: 24940, line: 16 },
  ]);
});

test('bad lines are reported with line numbers, good lines still load', () => {
  const text = [
    '1.2.3.4',
    '1.2.3.256',
    '10.0.0.0/33',
    'fe80::1%eth0',
    'AS0',
    'AS99999999999',
    '+1-800-FLOWERS',
    '+44 7400 123456 ext 12',
    '+0123',
    'hello world',
    'x'.repeat(300),
    '5.6.7.8',
  ].join('\n');
  const { entries, errors } = parseListText(text);
  assert.deepEqual(
    entries.map((e) => [e.line, e.value]),
    [
      [1, '1.2.3.4'],
      [12, '5.6.7.8'],
    ],
  );
  assert.deepEqual(
    errors.map((e) => [e.line, e.reason]),
    [
      [2, 'invalid_ip'],
      [3, 'invalid_cidr'],
      [4, 'invalid_ip'],
      [5, 'invalid_asn'],
      [6, 'invalid_asn'],
      [7, 'invalid_number'],
      [8, 'invalid_number'],
      [9, 'invalid_number'],
      [10, 'unrecognized'],
      [11, 'line_too_long'],
    ],
  );
  assert.equal(errors[0]?.text, '1.2.3.256');
  assert.ok((errors.at(-1)?.text.length ?? 0) <= 120);
});

test('accept restricts kinds per file', () => {
  const text = '1.2.3.4\nAS13335\n+447400123456\n+4470';
  const ipOnly = parseListText(text, { accept: ['ip', 'cidr', 'asn'] });
  assert.deepEqual(ipOnly.entries.map((e) => e.kind), ['ip', 'asn']);
  assert.deepEqual(ipOnly.errors.map((e) => [e.line, e.reason]), [
    [3, 'wrong_kind'],
    [4, 'wrong_kind'],
  ]);
  const numbers = parseListText(text, { accept: ['number', 'prefix'] });
  assert.deepEqual(numbers.entries.map((e) => e.kind), ['number', 'prefix']);
  assert.equal(numbers.errors.length, 2);
});

test('empty input and only comments', () => {
  assert.deepEqual(parseListText(''), { entries: [], errors: [] });
  assert.deepEqual(parseListText('# nothing\n\n#'), { entries: [], errors: [] });
});
