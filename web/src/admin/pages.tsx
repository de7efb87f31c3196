/**
 * The admin areas' pages: 机构 and 用户 (platform admin), 机构用户 (facility admin: their subtree's
 * users and facilities), and 审计 (both; see audit/AuditPage.tsx).
 */
import { useSearchParams } from "react-router-dom";
import { useI18n } from "../i18n";
import { FacilityTreePanel } from "./facilities/FacilityTreePanel";
import { Notice, useNotice } from "./Notice";
import { useFacilityTree } from "./useFacilityTree";
import { UsersPanel } from "./users/UsersPanel";

export function FacilitiesPage() {
  const { t } = useI18n();
  const tree = useFacilityTree();
  const [notice, showNotice] = useNotice();
  return (
    <div className="page adm-page" data-testid="area-page-facilities">
      <header className="page-header">
        <h1>{t.admin.facilities.title}</h1>
        <p className="muted">{t.admin.facilities.summary}</p>
      </header>
      <Notice text={notice} />
      <section className="panel adm-panel">
        <FacilityTreePanel tree={tree} onNotice={showNotice} />
      </section>
    </div>
  );
}

export function UsersPage() {
  const { t } = useI18n();
  const tree = useFacilityTree();
  const [notice, showNotice] = useNotice();
  return (
    <div className="page adm-page adm-page-wide" data-testid="area-page-users">
      <header className="page-header">
        <h1>{t.admin.users.title}</h1>
        <p className="muted">{t.admin.users.summary}</p>
      </header>
      <Notice text={notice} />
      <section className="panel adm-panel">
        <UsersPanel tree={tree} onNotice={showNotice} />
      </section>
    </div>
  );
}

type Tab = "users" | "facilities";

/** The facility admin's page: the users of their subtree, and the subtree itself. */
export function FacilityUsersPage() {
  const { t } = useI18n();
  const tree = useFacilityTree();
  const [notice, showNotice] = useNotice();
  const [params, setParams] = useSearchParams();
  const tab: Tab = params.get("tab") === "facilities" ? "facilities" : "users";
  const tabs: [Tab, string][] = [
    ["users", t.admin.users.title],
    ["facilities", t.admin.facilities.title],
  ];
  return (
    <div className="page adm-page adm-page-wide" data-testid="area-page-facilityUsers">
      <header className="page-header">
        <h1>{t.areas.facilityUsers.title}</h1>
        <p className="muted">{tab === "users" ? t.admin.users.facilitySummary : t.admin.facilities.subtreeSummary}</p>
      </header>
      <Notice text={notice} />
      <section className="panel adm-panel">
        <div className="adm-tabs" role="tablist">
          {tabs.map(([key, label]) => (
            <button
              key={key}
              type="button"
              role="tab"
              aria-selected={tab === key}
              className={tab === key ? "adm-tab active" : "adm-tab"}
              onClick={() => setParams(key === "users" ? {} : { tab: key }, { replace: true })}
              data-testid={`facility-users-tab-${key}`}
            >
              {label}
            </button>
          ))}
        </div>
        {tab === "users" ? (
          <UsersPanel tree={tree} onNotice={showNotice} />
        ) : (
          <FacilityTreePanel tree={tree} onNotice={showNotice} />
        )}
      </section>
    </div>
  );
}
