/** The township doctor's ECG area: the facility's recordings and the way to upload a new one. */
import { useState } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../i18n";
import { Icon } from "../../ui/Icon";
import { RecordingsTable, type StatusFilter } from "./RecordingsTable";

const FILTERS: StatusFilter[] = ["all", "waiting", "signed", "failed"];

export function RecordingsPage() {
  const { t } = useI18n();
  const tl = t.ecg.list;
  const [filter, setFilter] = useState<StatusFilter>("all");
  return (
    <div className="page ecg-page" data-testid="area-page-ecg">
      <header className="page-header page-header-row">
        <div>
          <h1>{t.areas.ecg.title}</h1>
          <p className="muted">{t.areas.ecg.summary}</p>
        </div>
        <Link to="/ecg/new" className="btn btn-primary" data-testid="ecg-new-upload">
          <Icon name="upload" size={18} />
          {tl.upload}
        </Link>
      </header>
      <section className="panel">
        <div className="tabs" role="tablist">
          {FILTERS.map((f) => (
            <button
              key={f}
              type="button"
              role="tab"
              aria-selected={filter === f}
              className={filter === f ? "tab active" : "tab"}
              onClick={() => setFilter(f)}
              data-testid={`ecg-filter-${f}`}
            >
              {tl.filters[f]}
            </button>
          ))}
        </div>
        <RecordingsTable filter={filter} />
      </section>
    </div>
  );
}
