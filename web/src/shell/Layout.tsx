import { useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { logout } from "../api/session";
import { useUser } from "../auth/useSession";
import { CriticalAlertBanner, NavAlertCount } from "../ecg/alerts/AlertBanner";
import { EcgAlertsProvider } from "../ecg/alerts/AlertsProvider";
import { ImagingAlertBanner } from "../imaging/alerts/ImagingAlertBanner";
import { ImagingAlertsProvider } from "../imaging/alerts/ImagingAlertsProvider";
import { useI18n } from "../i18n";
import { Icon, LogoMark } from "../ui/Icon";
import { activeArea, areasFor } from "./areas";
import { facilityName } from "./facility";
import { LanguageSwitch } from "./LanguageSwitch";

/** The frame around every signed-in page: top bar (app, facility, user, language, sign out) and the role's nav. */
export function Layout() {
  const { t, lang } = useI18n();
  const user = useUser();
  const navigate = useNavigate();
  const [leaving, setLeaving] = useState(false);
  const areas = areasFor(user.roles);
  // An area stays highlighted on its sub-pages (/ecg/new, /ecg/recordings/:id), the most specific area
  // winning where paths nest (/ecg/upload is not /ecg): NavLink's own matching cannot weigh the two.
  const current = activeArea(useLocation().pathname, areas);

  const signOut = async () => {
    setLeaving(true);
    await logout();
    navigate("/login", { replace: true, state: { reason: "logged_out" } });
  };

  return (
    <EcgAlertsProvider>
    <ImagingAlertsProvider>
    <div className="shell">
      <header className="topbar">
        <NavLink to="/home" className="brand" data-testid="app-title">
          <LogoMark size={28} />
          <span>{t.app.name}</span>
        </NavLink>
        <div className="topbar-right">
          <span className="topbar-facility" data-testid="topbar-facility">
            {facilityName(user.facility, lang)}
          </span>
          <span className="topbar-user">
            <strong data-testid="user-name">{user.display_name}</strong>
            <span className="muted" data-testid="user-roles">
              {user.roles.map((role) => t.roles[role] ?? role).join("、")}
            </span>
          </span>
          <LanguageSwitch />
          <button type="button" className="btn btn-ghost" onClick={signOut} disabled={leaving} data-testid="logout">
            <Icon name="logout" size={18} />
            <span>{leaving ? t.shell.loggingOut : t.shell.logout}</span>
          </button>
        </div>
      </header>
      <nav className="sidebar" aria-label={t.shell.navLabel} data-testid="nav">
        <ul>
          <li>
            <NavLink to="/home" className="nav-item" data-testid="nav-item-home">
              <Icon name="home" />
              <span>{t.shell.home}</span>
            </NavLink>
          </li>
          {areas.map((area) => (
            <li key={area.key}>
              <Link
                to={area.path}
                className={area.key === current?.key ? "nav-item active" : "nav-item"}
                aria-current={area.key === current?.key ? "page" : undefined}
                data-testid={`nav-item-${area.key}`}
              >
                <Icon name={area.icon} />
                <span>{t.areas[area.key].title}</span>
                <NavAlertCount area={area.key} />
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content" id="main">
        <CriticalAlertBanner />
        <ImagingAlertBanner />
        <Outlet />
      </main>
    </div>
    </ImagingAlertsProvider>
    </EcgAlertsProvider>
  );
}
