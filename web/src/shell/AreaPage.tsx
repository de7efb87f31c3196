import type { ReactNode } from "react";
import { Link } from "react-router-dom";
import { useUser } from "../auth/useSession";
import { useI18n } from "../i18n";
import { ComingSoon } from "../ui/states";
import { areasFor, type AreaKey } from "./areas";

/** Guards an area by role: a user whose roles do not use it sees "no access" (the API refuses anyway). */
export function AreaRoute({ area, children }: { area: AreaKey; children?: ReactNode }) {
  const user = useUser();
  if (!areasFor(user.roles).some((a) => a.key === area)) return <Forbidden />;
  return <>{children ?? <AreaPlaceholder area={area} />}</>;
}

/** An area whose page is not built yet: its name, what it will do, and plainly "coming soon". */
export function AreaPlaceholder({ area }: { area: AreaKey }) {
  const { t } = useI18n();
  return (
    <div className="page" data-testid={`area-page-${area}`}>
      <header className="page-header">
        <h1>{t.areas[area].title}</h1>
        <p className="muted">{t.areas[area].summary}</p>
      </header>
      <div className="panel">
        <ComingSoon />
      </div>
    </div>
  );
}

export function Forbidden() {
  const { t } = useI18n();
  return (
    <div className="page" data-testid="forbidden">
      <header className="page-header">
        <h1>{t.shell.forbiddenTitle}</h1>
        <p className="muted">{t.shell.forbidden}</p>
      </header>
      <Link to="/home" className="btn btn-secondary">
        {t.shell.backHome}
      </Link>
    </div>
  );
}

export function NotFound() {
  const { t } = useI18n();
  return (
    <div className="page" data-testid="not-found">
      <header className="page-header">
        <h1>{t.shell.notFoundTitle}</h1>
        <p className="muted">{t.shell.notFound}</p>
      </header>
      <Link to="/home" className="btn btn-secondary">
        {t.shell.backHome}
      </Link>
    </div>
  );
}
