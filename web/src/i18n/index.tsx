import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { en } from "./en";
import { zh, type Dictionary } from "./zh";

export type Lang = "zh" | "en";
export type { Dictionary };

const dictionaries: Record<Lang, Dictionary> = { zh, en };
const STORAGE_KEY = "th.lang";

/** The language the user chose last time (localStorage), else Simplified Chinese. */
export function initialLang(): Lang {
  try {
    return window.localStorage.getItem(STORAGE_KEY) === "en" ? "en" : "zh";
  } catch {
    return "zh";
  }
}

interface I18n {
  lang: Lang;
  t: Dictionary;
  setLang: (lang: Lang) => void;
  toggleLang: () => void;
  /** BCP 47 tag for Intl formatting and the <html lang> attribute. */
  locale: string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const setLang = useCallback((next: Lang) => {
    setLangState(next);
    try {
      window.localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // storage may be disabled; the choice then lasts for this page only
    }
  }, []);
  const locale = lang === "zh" ? "zh-CN" : "en";
  useEffect(() => {
    document.documentElement.lang = locale;
    document.title = dictionaries[lang].app.name;
  }, [lang, locale]);
  const value = useMemo<I18n>(
    () => ({ lang, t: dictionaries[lang], setLang, toggleLang: () => setLang(lang === "zh" ? "en" : "zh"), locale }),
    [lang, setLang, locale],
  );
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const ctx = useContext(I18nContext);
  if (!ctx) throw new Error("useI18n outside I18nProvider");
  return ctx;
}

/** A time of day in the platform's time zone (Asia/Shanghai), e.g. "14:05". */
export function formatTime(date: Date, locale: string, withDate = false): string {
  return new Intl.DateTimeFormat(locale, {
    timeZone: "Asia/Shanghai",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
    ...(withDate ? { year: "numeric", month: "2-digit", day: "2-digit" } : {}),
  }).format(date);
}
