import { useI18n } from "../i18n";
import { Icon } from "../ui/Icon";

/** 中文 ⇄ English; the choice is kept in localStorage. */
export function LanguageSwitch() {
  const { t, toggleLang } = useI18n();
  return (
    <button
      type="button"
      className="btn btn-ghost lang-switch"
      onClick={toggleLang}
      title={t.app.switchLanguageTitle}
      data-testid="lang-switch"
    >
      <Icon name="globe" size={18} />
      <span>{t.app.switchLanguage}</span>
    </button>
  );
}
