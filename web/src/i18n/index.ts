// The console's languages: typed catalogues (en.ts is the reference, zh.ts must match it
// key for key), the current language in localStorage, and Intl for dates and numbers in
// the viewer's locale.
import { en, type MessageKey } from './en';
import { zh } from './zh';

export type Lang = 'en' | 'zh';
export type { MessageKey };
export const LANGS: { id: Lang; label: string }[] = [
  { id: 'en', label: 'English' },
  { id: 'zh', label: '简体中文' },
];
const catalogues: Record<Lang, Record<MessageKey, string>> = { en, zh };
const STORAGE_KEY = 'tethys.lang';

function initial(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'zh') return saved;
  } catch {
    /* storage refused: the browser's language decides */
  }
  return typeof navigator !== 'undefined' && navigator.language.toLowerCase().startsWith('zh')
    ? 'zh'
    : 'en';
}

let current: Lang = initial();

export function lang(): Lang {
  return current;
}

/** Switch language and remember it; the caller re-renders. */
export function setLang(l: Lang): void {
  current = l;
  try {
    localStorage.setItem(STORAGE_KEY, l);
  } catch {
    /* not remembered, still switched */
  }
  if (typeof document !== 'undefined') document.documentElement.lang = localeTag();
}

/** The BCP 47 tag for Intl: the viewer's own locale when it is of the chosen language. */
export function localeTag(l: Lang = current, viewer?: string): string {
  const v = viewer ?? (typeof navigator !== 'undefined' ? navigator.language : 'en-US');
  if (v.toLowerCase().startsWith(l)) return v;
  return l === 'zh' ? 'zh-CN' : 'en-US';
}

export function interpolate(msg: string, vars?: Record<string, string | number>): string {
  if (!vars) return msg;
  return msg.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

/** The message `key` in the current language, with {name} placeholders filled. */
export function t(key: MessageKey, vars?: Record<string, string | number>): string {
  return interpolate(catalogues[current][key] ?? en[key], vars);
}

export function catalogue(l: Lang): Record<MessageKey, string> {
  return catalogues[l];
}
