/**
 * Message templates per locale.
 *
 * Placeholders: `{code}`, `{app}`, `{minutes}`. Every built-in names the app (so the user knows who is
 * texting them), says the code expires and asks not to share it (the classic social-engineering
 * defence). Texts lead with `{app}:` rather than weaving the name into a sentence, which keeps
 * grammar (articles, cases, genders) right for any app name; minutes are abbreviated where the
 * language would otherwise need plural forms.
 *
 * When a `domain` is given, a last line `@<domain> #<code>` is appended: the origin-bound one-time
 * code format that the WebOTP API (browsers) reads and that stops the code autofilling on the wrong
 * site.
 */

export const DEFAULT_LOCALE = 'en';

export const BUILT_IN_TEMPLATES: Readonly<Record<string, string>> = Object.freeze({
  en: "{app}: your verification code is {code}. It expires in {minutes} min. Don't share it with anyone.",
  id: '{app}: kode verifikasi Anda {code}. Berlaku {minutes} menit. Jangan berikan kode ini kepada siapa pun.',
  es: '{app}: tu código de verificación es {code}. Caduca en {minutes} min. No lo compartas con nadie.',
  pt: '{app}: seu código de verificação é {code}. Expira em {minutes} min. Não o compartilhe com ninguém.',
  'pt-pt': '{app}: o seu código de verificação é {code}. Expira em {minutes} min. Não o partilhe com ninguém.',
  fr: '{app} : votre code de vérification est {code}. Il expire dans {minutes} min. Ne le partagez avec personne.',
  de: '{app}: Ihr Bestätigungscode lautet {code}. Er läuft in {minutes} Min. ab. Geben Sie ihn nicht weiter.',
  it: '{app}: il tuo codice di verifica è {code}. Scade tra {minutes} min. Non condividerlo con nessuno.',
  ru: '{app}: ваш код подтверждения {code}. Действует {minutes} мин. Никому его не сообщайте.',
  ar: '{app}: رمز التحقق الخاص بك هو {code}. تنتهي صلاحيته خلال {minutes} دقيقة. لا تشاركه مع أي شخص.',
  hi: '{app}: आपका सत्यापन कोड {code} है। यह {minutes} मिनट में समाप्त हो जाएगा। इसे किसी के साथ साझा न करें।',
  zh: '{app}：您的验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。',
  // Traditional script: zh-TW / zh-HK would otherwise fall back to Simplified `zh`.
  'zh-hant': '{app}：您的驗證碼是 {code}，{minutes} 分鐘內有效。請勿告訴他人。',
  'zh-tw': '{app}：您的驗證碼是 {code}，{minutes} 分鐘內有效。請勿告訴他人。',
  'zh-hk': '{app}：您的驗證碼是 {code}，{minutes} 分鐘內有效。請勿告訴他人。',
  ja: '{app}：認証コードは {code} です。有効期限は{minutes}分です。他の人に教えないでください。',
  tr: '{app}: doğrulama kodunuz {code}. {minutes} dk geçerlidir. Kimseyle paylaşmayın.',
  vi: '{app}: mã xác minh của bạn là {code}. Mã hết hạn sau {minutes} phút. Không chia sẻ mã này với bất kỳ ai.',
});

/** A validated, normalised template set. Build it with `createTemplates`. */
export interface Templates {
  /** Keys are normalised locale tags (lowercase, `-` separated). */
  readonly byLocale: ReadonlyMap<string, string>;
  readonly defaultLocale: string;
}

export interface RenderVars {
  locale: string | null;
  code: string;
  app: string;
  minutes: number;
  /** Enables the `@domain #code` WebOTP line. A bare host name, no scheme or path. */
  domain?: string;
}

/** Bad template configuration. `problems` lists every issue so an operator fixes them in one go. */
export class TemplateConfigError extends Error {
  override readonly name = 'TemplateConfigError';
  readonly kind = 'template_config' as const;
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid message templates: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

const PLACEHOLDER_RE = /\{([^{}]*)\}/g;
const KNOWN_PLACEHOLDERS = new Set(['code', 'app', 'minutes']);
const LOCALE_RE = /^[a-z]{2,3}(-[a-z0-9]{1,8})*$/;
/** A long SMS costs several segments per send; anything past this is surely a mistake. */
const MAX_TEMPLATE_LENGTH = 480;

/** Lowercase, `_` → `-`, trimmed: `pt_BR`, `pt-br` and `pt-BR` are the same locale. */
export function normalizeLocale(locale: string): string {
  return locale.trim().replace(/_/g, '-').toLowerCase();
}

/**
 * Validate overrides without throwing; returns human-readable problems (empty = fine). Exposed for the
 * config loader, which reports all config errors together.
 */
export function validateTemplateOverrides(overrides: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [rawLocale, template] of Object.entries(overrides)) {
    const locale = normalizeLocale(rawLocale);
    const where = `template "${rawLocale}"`;
    if (!LOCALE_RE.test(locale)) problems.push(`${where}: not a locale tag like "en" or "pt-BR"`);
    if (typeof template !== 'string' || template.trim() === '') {
      problems.push(`${where}: must be a non-empty string`);
      continue;
    }
    if (!template.includes('{code}')) problems.push(`${where}: must contain the {code} placeholder`);
    for (const m of template.matchAll(PLACEHOLDER_RE)) {
      const key = m[1] ?? '';
      if (!KNOWN_PLACEHOLDERS.has(key)) {
        problems.push(`${where}: unknown placeholder {${key}} (allowed: {code}, {app}, {minutes})`);
      }
    }
    if (template.length > MAX_TEMPLATE_LENGTH) {
      problems.push(`${where}: longer than ${MAX_TEMPLATE_LENGTH} characters`);
    }
  }
  return problems;
}

/**
 * Built-ins merged with validated overrides (an override replaces the built-in for that exact locale).
 * Throws `TemplateConfigError` listing every problem.
 */
export function createTemplates(
  overrides: Record<string, string> = {},
  opts: { defaultLocale?: string } = {},
): Templates {
  const problems = validateTemplateOverrides(overrides);
  const byLocale = new Map<string, string>();
  for (const [locale, template] of Object.entries(BUILT_IN_TEMPLATES)) byLocale.set(locale, template);
  for (const [locale, template] of Object.entries(overrides)) byLocale.set(normalizeLocale(locale), template);
  const defaultLocale = normalizeLocale(opts.defaultLocale ?? DEFAULT_LOCALE);
  if (!byLocale.has(defaultLocale)) problems.push(`default locale "${defaultLocale}" has no template`);
  if (problems.length > 0) throw new TemplateConfigError(problems);
  return { byLocale, defaultLocale };
}

/** `pt-BR` → `pt-br`, then `pt`, then the default locale. Returns the locale whose template is used. */
export function resolveLocale(templates: Templates, locale: string | null): string {
  if (locale !== null) {
    const parts = normalizeLocale(locale).split('-');
    while (parts.length > 0) {
      const candidate = parts.join('-');
      if (templates.byLocale.has(candidate)) return candidate;
      parts.pop();
    }
  }
  return templates.defaultLocale;
}

/** Host names only: the WebOTP line must be exactly `@host #code`. */
export function isValidOtpDomain(domain: string): boolean {
  return (
    domain.length <= 253 &&
    /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(domain)
  );
}

export function renderMessage(templates: Templates, vars: RenderVars): string {
  const template = templates.byLocale.get(resolveLocale(templates, vars.locale));
  // createTemplates guarantees the default locale exists; this only guards a hand-built Templates.
  if (template === undefined) throw new TemplateConfigError([`no template for default locale "${templates.defaultLocale}"`]);
  const values: Record<string, string> = {
    code: vars.code,
    // Control characters in an app name could break the SMS layout or forge extra lines.
    app: vars.app.replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ').trim(),
    minutes: String(Math.max(1, Math.round(vars.minutes))),
  };
  // One pass over the template: substituted values are never re-scanned, so an app name containing
  // "{code}" stays literal text.
  let text = template.replace(PLACEHOLDER_RE, (whole, key: string) => values[key] ?? whole);
  if (vars.domain !== undefined) {
    if (!isValidOtpDomain(vars.domain)) {
      throw new TemplateConfigError([`domain "${vars.domain}" is not a bare host name (e.g. "example.com")`]);
    }
    // The WebOTP format requires this to be the last line.
    text += `\n\n@${vars.domain} #${vars.code}`;
  }
  return text;
}
