/** The specialist's two views of imaging work: the worklist and the study search. */
import { Link } from "react-router-dom";
import { useI18n } from "../../i18n";

export function WorklistTabs({ active }: { active: "worklist" | "search" }) {
  const { t } = useI18n();
  return (
    <div className="segmented imaging-tabs" role="tablist">
      <Link to="/imaging/worklist" role="tab" aria-selected={active === "worklist"} className={active === "worklist" ? "active" : ""} data-testid="imaging-tab-worklist">
        {t.imaging.worklist.tabWorklist}
      </Link>
      <Link to="/imaging/worklist?tab=search" role="tab" aria-selected={active === "search"} className={active === "search" ? "active" : ""} data-testid="imaging-tab-search">
        {t.imaging.worklist.tabSearch}
      </Link>
    </div>
  );
}
