import { Link } from "react-router-dom";
import { AREA_PAGES } from "../areaPages";
import { useUser } from "../auth/useSession";
import { useI18n } from "../i18n";
import { areasFor } from "../shell/areas";
import { facilityName } from "../shell/facility";
import { SystemStatus } from "../system/SystemStatus";
import { Icon } from "../ui/Icon";
import { EmptyState } from "../ui/states";
import { greeting } from "./greeting";

/** The role's home: who and where you are, and a card for each area your role uses. */
export function HomePage() {
  const { t, lang, locale } = useI18n();
  const user = useUser();
  const areas = areasFor(user.roles);
  const today = new Intl.DateTimeFormat(locale, {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "long",
    day: "numeric",
    weekday: "long",
  }).format(new Date());

  return (
    <div className="page" data-testid="home-page">
      <header className="home-header">
        <div>
          <h1 data-testid="home-greeting">{greeting(t, user.display_name)}</h1>
          <p className="home-meta">
            <span data-testid="home-facility">{facilityName(user.facility, lang)}</span>
            {t.facilityKinds[user.facility.kind] ? (
              <span className="badge badge-muted">{t.facilityKinds[user.facility.kind]}</span>
            ) : null}
            <span className="sep" aria-hidden="true">·</span>
            <span data-testid="home-roles">{user.roles.map((role) => t.roles[role] ?? role).join("、")}</span>
          </p>
        </div>
        <p className="home-date muted">{today}</p>
      </header>

      <h2 className="section-title">{t.home.areasTitle}</h2>
      {areas.length === 0 ? (
        <EmptyState>{t.home.noAreas}</EmptyState>
      ) : (
        <div className="card-grid" data-testid="home-cards">
          {areas.map((area) =>
            area.key === "systemStatus" ? (
              <article key={area.key} className="card card-wide" data-testid={`home-card-${area.key}`}>
                <header className="card-header">
                  <span className="card-icon">
                    <Icon name={area.icon} size={22} />
                  </span>
                  <h3>{t.areas[area.key].title}</h3>
                </header>
                <div className="card-body">
                  <SystemStatus compact />
                </div>
                <footer className="card-footer">
                  <Link to={area.path} className="card-open">
                    {t.home.details} →
                  </Link>
                </footer>
              </article>
            ) : (
              <Link key={area.key} to={area.path} className="card card-link" data-testid={`home-card-${area.key}`}>
                <header className="card-header">
                  <span className="card-icon">
                    <Icon name={area.icon} size={22} />
                  </span>
                  <h3>{t.areas[area.key].title}</h3>
                </header>
                <p className="card-summary">{t.areas[area.key].summary}</p>
                <footer className="card-footer">
                  {area.key in AREA_PAGES ? (
                    <span />
                  ) : (
                    <span className="badge badge-muted" data-testid="coming-soon">
                      {t.common.comingSoon}
                    </span>
                  )}
                  <span className="card-open">{t.home.open} →</span>
                </footer>
              </Link>
            ),
          )}
        </div>
      )}
    </div>
  );
}
