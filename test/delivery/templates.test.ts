import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILT_IN_TEMPLATES,
  TemplateConfigError,
  createTemplates,
  renderMessage,
  resolveLocale,
  validateTemplateOverrides,
} from '../../src/delivery/templates.ts';

const REQUIRED = ['en', 'id', 'es', 'pt', 'fr', 'de', 'it', 'ru', 'ar', 'hi', 'zh', 'ja', 'tr', 'vi'];

test('built-ins exist for every required locale and use all three placeholders', () => {
  for (const locale of REQUIRED) {
    const t = BUILT_IN_TEMPLATES[locale];
    assert.ok(t, `missing built-in for ${locale}`);
    for (const ph of ['{code}', '{app}', '{minutes}']) assert.ok(t.includes(ph), `${locale} lacks ${ph}`);
  }
  // Built-ins must pass the same validation operators' overrides do.
  assert.deepEqual(validateTemplateOverrides({ ...BUILT_IN_TEMPLATES }), []);
});

test('renders placeholders', () => {
  const templates = createTemplates();
  const text = renderMessage(templates, { locale: 'en', code: '123456', app: 'Acme', minutes: 10 });
  assert.equal(text, "Acme: your verification code is 123456. It expires in 10 min. Don't share it with anyone.");
  const de = renderMessage(templates, { locale: 'de', code: '123456', app: 'Acme', minutes: 5 });
  assert.ok(de.startsWith('Acme: ') && de.includes('123456') && de.includes('5 Min.'), de);
});

test('locale fallback: pt-BR → pt, region-less and unknown → en, case and _ insensitive', () => {
  const templates = createTemplates();
  assert.equal(resolveLocale(templates, 'pt-BR'), 'pt');
  assert.equal(resolveLocale(templates, 'pt_br'), 'pt');
  assert.equal(resolveLocale(templates, 'pt-PT'), 'pt-pt');
  assert.equal(resolveLocale(templates, 'zh-Hant-TW'), 'zh-hant');
  assert.equal(resolveLocale(templates, 'zh-CN'), 'zh');
  assert.equal(resolveLocale(templates, 'xx-YY'), 'en');
  assert.equal(resolveLocale(templates, null), 'en');
  assert.equal(resolveLocale(templates, ''), 'en');
  const ptBr = renderMessage(templates, { locale: 'pt-BR', code: '111222', app: 'Acme', minutes: 3 });
  assert.equal(ptBr, renderMessage(templates, { locale: 'pt', code: '111222', app: 'Acme', minutes: 3 }));
  assert.notEqual(ptBr, renderMessage(templates, { locale: 'en', code: '111222', app: 'Acme', minutes: 3 }));
});

test('WebOTP line is appended only when a domain is configured, as the last line', () => {
  const templates = createTemplates();
  const without = renderMessage(templates, { locale: 'fr', code: '987654', app: 'Acme', minutes: 5 });
  assert.doesNotMatch(without, /@/);
  const withDomain = renderMessage(templates, { locale: 'fr', code: '987654', app: 'Acme', minutes: 5, domain: 'login.acme.test' });
  assert.equal(withDomain, `${without}\n\n@login.acme.test #987654`);
  assert.equal(withDomain.split('\n').at(-1), '@login.acme.test #987654');
  assert.throws(
    () => renderMessage(templates, { locale: 'en', code: '1', app: 'A', minutes: 1, domain: 'https://acme.test/' }),
    TemplateConfigError,
  );
});

test('overrides replace a built-in, add new locales, and take part in fallback', () => {
  const templates = createTemplates({ 'pt-BR': 'Código {app}: {code}', nl: '{app}: je code is {code} ({minutes} min)' });
  assert.equal(renderMessage(templates, { locale: 'pt-br', code: '42', app: 'X', minutes: 1 }), 'Código X: 42');
  // Plain pt still uses the built-in.
  assert.match(renderMessage(templates, { locale: 'pt', code: '42', app: 'X', minutes: 1 }), /seu código/);
  assert.equal(renderMessage(templates, { locale: 'nl-BE', code: '42', app: 'X', minutes: 7 }), 'X: je code is 42 (7 min)');
  const en = createTemplates({ en: 'Code {code}' });
  assert.equal(renderMessage(en, { locale: 'sw', code: '42', app: 'X', minutes: 1 }), 'Code 42');
});

test('an override without {code} is rejected with a clear error', () => {
  assert.throws(
    () => createTemplates({ fr: 'Bonjour de {app}' }),
    (err: unknown) =>
      err instanceof TemplateConfigError &&
      err.problems.length === 1 &&
      err.message.includes('template "fr"') &&
      err.message.includes('{code}'),
  );
});

test('other override mistakes are reported together', () => {
  const problems = validateTemplateOverrides({ en: '{app} {cod}', 'not a locale': '{code}', es: '' });
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.ok(problems.some((p) => p.includes('unknown placeholder {cod}')));
  assert.ok(problems.some((p) => p.includes('"not a locale"')));
  assert.ok(problems.some((p) => p.includes('"es"') && p.includes('non-empty')));
  assert.throws(() => createTemplates({}, { defaultLocale: 'xx' }), TemplateConfigError);
});

test('substitution is single-pass and app names cannot inject lines', () => {
  const templates = createTemplates({ en: '{app}: {code}' });
  assert.equal(renderMessage(templates, { locale: 'en', code: '5', app: 'Evil {code}', minutes: 1 }), 'Evil {code}: 5');
  assert.equal(renderMessage(templates, { locale: 'en', code: '5', app: 'Evil\n@evil.test #5', minutes: 1 }), 'Evil @evil.test #5: 5');
});
